// HighLevel's official SDK as a second judge of the mock's OAuth and Contacts answers
// (tests/tests/ghl_sdk.rs): the SDK's own calls, pointed at the mock, should get what HighLevel
// would answer.
//
//   node client.mjs --authorize-url < {client_id, redirect_uri, scope}
//     prints {url}, the SDK's oauth.getAuthorizationUrl(clientId, redirectUri, scope).
//
//   node client.mjs < {base_url, client_id, client_secret, code, redirect_uri, company_id,
//                      location_id, app_id, other_location_id, other_contact_id}
//     in order: the code exchanged for an agency (Company) token, a location token for
//     location_id, the installed locations; with the location token a contact created, read,
//     updated, found by search and as a duplicate, given a note and a task, its notes and tasks
//     listed; then the same token used on another location (its contact, a contact naming it) and
//     the SDK's default Version tried. Prints {steps: {name: outcome}}, each outcome
//     {ok, status, ...the answer's relevant fields} or {ok: false, status, error, answer}.
//     No token, code or secret is printed.
//
// Tokens live where the SDK keeps them, its session storage, under the company's and the
// location's ids, and the SDK picks one per call from the ids in the request: companyId for the
// OAuth routes, locationId in the query or body for Contacts. Routes that name only a contact
// (get, update, notes, tasks) carry no locationId, so the location is passed as a request
// header, the way the SDK's README does (`{ headers: { locationId } }`); the mock ignores it.
import sdk from '@gohighlevel/api-client';

const { HighLevel, MemorySessionStorage, UserType } = sdk;

// The Contacts and OAuth specs allow only `Version: 2021-07-28`; the SDK sends its default
// `2023-02-21` unless told otherwise, and the spec-faithful mock refuses that with 400 (the
// `default_version` step shows it).
const API_VERSION = '2021-07-28';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** The fields of a contact the test compares; the rest the mock made up. */
function contactFields(contact) {
  if (!contact) return null;
  const { id, locationId, firstName, lastName, email, phone, tags } = contact;
  return { id, locationId, firstName, lastName, email, phone, tags };
}

async function run(job) {
  // The SDK reads its origin from this static when a client is constructed; every service,
  // OAuth's token endpoints included, shares that client.
  HighLevel.BASE_URL = job.base_url;
  const storage = new MemorySessionStorage();
  const config = { clientId: job.client_id, clientSecret: job.client_secret, sessionStorage: storage, logLevel: 'none' };
  const ghl = new HighLevel({ ...config, apiVersion: API_VERSION });

  // The SDK's methods return only the answer's body; the status is read on the way past.
  let status = null;
  ghl.addResponseInterceptor({
    onFulfilled: (response) => {
      status = response.status;
      return response;
    },
  });

  const steps = {};
  async function step(name, call, fields) {
    status = null;
    try {
      const answer = await call();
      steps[name] = { ok: true, status, ...fields(answer) };
      return answer;
    } catch (error) {
      // statusCode is absent when the SDK refused before sending anything.
      steps[name] = { ok: false, status: error.statusCode ?? null, error: error.message, answer: error.response ?? null };
      return null;
    }
  }
  const location = job.location_id;
  const atLocation = { headers: { locationId: location } };

  const company = await step(
    'exchange_code',
    () =>
      ghl.oauth.getAccessToken({
        client_id: job.client_id,
        client_secret: job.client_secret,
        grant_type: 'authorization_code',
        code: job.code,
        user_type: UserType.Company,
        redirect_uri: job.redirect_uri,
      }),
    (t) => ({
      token_type: t.token_type,
      userType: t.userType,
      companyId: t.companyId,
      locationId: t.locationId ?? null,
      approvedLocations: t.approvedLocations,
      isBulkInstallation: t.isBulkInstallation,
      scope: t.scope,
      expires_in: t.expires_in,
      userId: t.userId,
      has_access_token: typeof t.access_token === 'string' && t.access_token !== '',
      has_refresh_token: typeof t.refresh_token === 'string' && t.refresh_token !== '',
    }),
  );
  if (company) await storage.setSession(company.companyId, company);

  const locationToken = await step(
    'location_token',
    () => ghl.oauth.getLocationAccessToken({ companyId: job.company_id, locationId: location }),
    (t) => ({
      token_type: t.token_type,
      locationId: t.locationId,
      scope: t.scope,
      expires_in: t.expires_in,
      userId: t.userId,
      appId: t.appId,
      has_access_token: typeof t.access_token === 'string' && t.access_token !== '',
      has_refresh_token: typeof t.refresh_token === 'string' && t.refresh_token !== '',
    }),
  );
  if (locationToken) await storage.setSession(location, { ...locationToken, userType: UserType.Location, companyId: job.company_id });

  await step(
    'installed_locations',
    () => ghl.oauth.getInstalledLocation({ companyId: job.company_id, appId: job.app_id, isInstalled: true }),
    (a) => ({ count: a.count, locations: (a.locations ?? []).map(({ _id, name, isInstalled }) => ({ _id, name, isInstalled })) }),
  );

  const created = await step(
    'create_contact',
    () =>
      ghl.contacts.createContact({
        locationId: location,
        firstName: 'Sdk',
        lastName: 'Judge',
        email: 'sdk.judge@example.com',
        phone: '+13125550142',
        tags: ['sdk'],
      }),
    (a) => ({ contact: contactFields(a.contact) }),
  );
  const contactId = created?.contact?.id ?? 'no-contact-created';
  const byId = { contactId };

  await step('get_contact', () => ghl.contacts.getContact(byId, atLocation), (a) => ({ contact: contactFields(a.contact) }));
  await step(
    'update_contact',
    () => ghl.contacts.updateContact(byId, { lastName: 'Judged', tags: ['sdk', 'updated'] }, atLocation),
    (a) => ({ succeded: a.succeded, contact: contactFields(a.contact) }),
  );
  await step(
    'search_contacts',
    () => ghl.contacts.searchContactsAdvanced({ locationId: location, pageLimit: 10, query: 'judge' }),
    (a) => ({ total: a.total, ids: (a.contacts ?? []).map((c) => c.id) }),
  );
  await step(
    'duplicate_contact',
    () => ghl.contacts.getDuplicateContact({ locationId: location, email: 'SDK.Judge@example.com' }),
    (a) => ({ contact: contactFields(a.contact) }),
  );
  await step(
    'create_note',
    () => ghl.contacts.createNote(byId, { body: 'Called through the SDK' }, atLocation),
    (a) => ({ note: a.note ? { id: a.note.id, body: a.note.body, contactId: a.note.contactId } : null }),
  );
  await step(
    'create_task',
    () => ghl.contacts.createTask(byId, { title: 'Call back', body: 'From the SDK', dueDate: '2030-01-02T15:04:05Z', completed: false }, atLocation),
    (a) => ({ task: a.task ? { id: a.task.id, title: a.task.title, body: a.task.body, contactId: a.task.contactId, completed: a.task.completed } : null }),
  );
  await step(
    'list_notes',
    () => ghl.contacts.getAllNotes(byId, atLocation),
    (a) => ({ notes: (a.notes ?? []).map(({ id, body, contactId }) => ({ id, body, contactId })) }),
  );
  await step(
    'list_tasks',
    () => ghl.contacts.getAllTasks(byId, atLocation),
    (a) => ({ tasks: (a.tasks ?? []).map(({ id, title, contactId }) => ({ id, title, contactId })) }),
  );

  // The location's token on another location. The header names this location, so the SDK picks
  // this location's token and the mock, like HighLevel, judges the request.
  await step('other_location_contact', () => ghl.contacts.getContact({ contactId: job.other_contact_id }, atLocation), (a) => ({
    contact: contactFields(a.contact),
  }));
  const elsewhere = { locationId: job.other_location_id, firstName: 'Elsewhere' };
  await step('other_location_create', () => ghl.contacts.createContact(elsewhere, atLocation), (a) => ({ contact: contactFields(a.contact) }));
  // Without the header the SDK looks for a session of the location the body names, has none,
  // and refuses on its own: nothing is sent.
  await step('other_location_create_unaided', () => ghl.contacts.createContact(elsewhere), (a) => ({ contact: contactFields(a.contact) }));

  // The SDK as it comes, with the same stored tokens: its default Version.
  const stock = new HighLevel(config);
  await step('default_version', () => stock.contacts.getContact(byId, atLocation), (a) => ({ contact: contactFields(a.contact) }));

  return { steps };
}

const input = await readStdin();
if (process.argv.includes('--authorize-url')) {
  const ghl = new HighLevel({ clientId: input.client_id, clientSecret: 'unused-by-the-authorization-url', logLevel: 'none' });
  process.stdout.write(JSON.stringify({ url: ghl.oauth.getAuthorizationUrl(input.client_id, input.redirect_uri, input.scope) }) + '\n');
} else {
  process.stdout.write(JSON.stringify(await run(input)) + '\n');
}
