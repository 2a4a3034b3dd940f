// HighLevel's official SDK as a second judge of app webhook signatures (tests/tests/ghl_sdk.rs).
//
//   node verify.mjs < cases.json
//     cases: [{body_b64, signature, public_key}]
//     prints [{valid}], the verdict of ghl.webhooks.verifyEd25519Signature(rawBody, signature, publicKey)
//
//   node verify.mjs --middleware < deliveries.json
//     deliveries: [{body_b64, signature, public_key, client_id, sessions: [resourceId]}]
//     runs each through the SDK's own webhook middleware (ghl.webhooks.subscribe()), as an
//     Express app would, with the raw body captured; prints for each the flags the middleware
//     sets on the request, whether it failed, what it asked its session storage for (INSTALL
//     mints a location token from the company's: `getAccessToken`; UNINSTALL deletes the
//     session: `deleteSession`), and the sessions left.
//
// Nothing leaves the machine: without a stored company token the SDK does not call HighLevel.
import sdk from '@gohighlevel/api-client';

const { HighLevel, MemorySessionStorage } = sdk;

/** The SDK's in-memory session storage, noting the calls the webhook middleware makes. */
class RecordingStorage extends MemorySessionStorage {
  constructor() {
    super();
    this.calls = [];
  }
  async getAccessToken(resourceId) {
    this.calls.push(`getAccessToken:${resourceId}`);
    return super.getAccessToken(resourceId);
  }
  async deleteSession(resourceId) {
    this.calls.push(`deleteSession:${resourceId}`);
    return super.deleteSession(resourceId);
  }
}

function client(clientId, publicKey, sessionStorage) {
  // The client secret is never used: only the webhook manager is exercised.
  return new HighLevel({ clientId, clientSecret: 'judge-secret', webhookPublicKey: publicKey, sessionStorage, logLevel: 'none' });
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function verify(cases) {
  const ghl = client('judge-client', undefined, undefined);
  return cases.map(({ body_b64, signature, public_key }) => ({
    valid: ghl.webhooks.verifyEd25519Signature(Buffer.from(body_b64, 'base64'), signature, public_key),
  }));
}

async function middleware(deliveries) {
  const results = [];
  for (const { body_b64, signature, public_key, client_id, sessions = [] } of deliveries) {
    const storage = new RecordingStorage();
    const ghl = client(client_id, public_key, storage);
    for (const resourceId of sessions) {
      await storage.setSession(resourceId, { access_token: `token-${resourceId}`, expires_in: 86400 });
    }
    storage.calls = [];
    const rawBody = Buffer.from(body_b64, 'base64');
    const headers = { 'content-type': 'application/json' };
    if (signature) headers['x-ghl-signature'] = signature;
    // What `express.json({ verify: (req, _res, buf) => { req.rawBody = buf } })` leaves on a request.
    const req = { method: 'POST', url: '/webhooks/highlevel', headers, body: JSON.parse(rawBody.toString('utf8')), rawBody };
    let failed = null;
    await ghl.webhooks.subscribe()(req, {}, (error) => {
      if (error) failed = String(error);
    });
    results.push({
      isSignatureValid: req.isSignatureValid ?? null,
      skippedSignatureVerification: req.skippedSignatureVerification ?? null,
      installTokenError: req.installTokenError ? String(req.installTokenError) : null,
      error: failed,
      calls: storage.calls,
      sessionsLeft: storage.getAllSessionKeys(),
    });
  }
  return results;
}

const input = await readStdin();
const output = process.argv.includes('--middleware') ? await middleware(input) : await verify(input);
process.stdout.write(JSON.stringify(output) + '\n');
