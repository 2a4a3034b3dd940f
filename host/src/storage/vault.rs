//! Secrets at rest: tenants' OAuth tokens, API keys and webhook secrets are kept in SQLite rows
//! sealed with XChaCha20-Poly1305 under a key the operator provides, so that a copy of the
//! database alone (a backup, a stolen disk) gives none of them away.
//!
//! A sealed value is `v1.<key id>.<nonce>.<ciphertext>` (nonce and ciphertext in unpadded
//! URL-safe base64). The key id names the key that sealed it without revealing it, so that after
//! a key change the old values can still be opened with the previous key and rewritten under the
//! new one (see [`rotate_all`] and `docs/secrets.md`). Each value is sealed for a context (e.g.
//! `tenant:acme/highlevel_refresh`), the AEAD's associated data: a value copied into another row
//! or another tenant fails to open instead of handing one tenant's token to another.

use crate::capability::secret::Secret;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use sha2::Digest as _;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize as _, Zeroizing};

/// The environment variable holding the current key (it wins over the key file).
pub const SECRET_KEY_ENV: &str = "DIALPAD_GHL_SECRET_KEY";
/// The environment variable holding previous keys, comma-separated, kept only to open and
/// rotate values sealed before a key change.
pub const PREVIOUS_SECRET_KEYS_ENV: &str = "DIALPAD_GHL_PREVIOUS_SECRET_KEYS";

const FORMAT_VERSION: &str = "v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_ID_LEN: usize = 8;
/// Hashed before the key for its id, so that the id is not a hash anything else might compute
/// of the same bytes (a key reused elsewhere, by mistake, stays unlinkable through its id).
const KEY_ID_DOMAIN: &[u8] = b"dialpad-ghl secret-key id v1\0";

/// Operators paste keys from many tools: padding and either alphabet are accepted.
const STANDARD_ANY_PADDING: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));
const URL_SAFE_ANY_PADDING: GeneralPurpose =
    GeneralPurpose::new(&alphabet::URL_SAFE, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

/// A 32-byte key that seals secrets. Its `Debug` shows only its id, and its bytes are wiped
/// from memory when it is dropped.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A key from its text: base64 (standard or URL-safe, padded or not) or 64 hex digits;
    /// surrounding whitespace (a key file's newline) is ignored.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        // Hex first: a hex key is also valid base64 and would decode to the wrong bytes. An
        // even run of hex digits of another length is taken as a hex key of the wrong length,
        // which names the mistake better than its base64 reading would.
        if text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(text.as_bytes().chunks(2).map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1])).collect());
            return SecretKey::from_bytes(&bytes);
        }
        for engine in [&STANDARD_ANY_PADDING, &URL_SAFE_ANY_PADDING] {
            if let Ok(bytes) = engine.decode(text) {
                return SecretKey::from_bytes(&Zeroizing::new(bytes));
            }
        }
        Err(KeyError::NotBase64OrHex)
    }

    /// A new random key.
    pub fn generate() -> SecretKey {
        let mut key = SecretKey([0; KEY_LEN]);
        random(&mut key.0);
        key
    }

    /// The key as standard padded base64 (44 characters), as `secret-key generate` prints it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// 8 hex digits naming this key in sealed values and messages; they reveal nothing of it.
    pub fn id(&self) -> String {
        let digest = sha2::Sha256::new().chain_update(KEY_ID_DOMAIN).chain_update(self.0).finalize();
        digest[..KEY_ID_LEN / 2].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_bytes(bytes: &[u8]) -> Result<SecretKey, KeyError> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyError::WrongLength { bytes: bytes.len() })?;
        Ok(SecretKey(key))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // From a slice, not an array converted by value: no unwiped copy of the key is left on the stack.
        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&self.0))
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({} [redacted])", self.id())
    }
}

fn nibble(hex_digit: u8) -> u8 {
    match hex_digit {
        b'0'..=b'9' => hex_digit - b'0',
        b'a'..=b'f' => hex_digit - b'a' + 10,
        _ => hex_digit - b'A' + 10,
    }
}

fn random(buf: &mut [u8]) {
    // Without the system's random source no key or nonce can be made safely, and no caller
    // could do anything better than stop.
    getrandom::getrandom(buf).expect("the system's random number generator");
}

/// Why a key's text is not a key. The messages never quote the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    Empty,
    WrongLength { bytes: usize },
    NotBase64OrHex,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const EXPECTED: &str = "a key is 32 bytes, as base64 (44 characters) or as 64 hex digits";
        match self {
            KeyError::Empty => write!(f, "the secret key is empty; {EXPECTED}"),
            KeyError::WrongLength { bytes } => write!(f, "the secret key is {bytes} bytes long, not 32; {EXPECTED}"),
            KeyError::NotBase64OrHex => {
                write!(f, "the secret key is neither base64 nor hex; {EXPECTED} (`dialpad-ghl secret-key generate` prints one)")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// The keys that seal and open secrets: the current one seals, it and the previous ones open.
#[derive(Clone, Debug)]
pub struct Vault {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl Vault {
    /// A vault sealing with `current` and also opening what `previous` sealed. A previous key
    /// equal to the current one is dropped, so that nothing it sealed counts as needing a reseal.
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Vault {
        let current_id = current.id();
        let previous = previous.into_iter().filter(|key| key.id() != current_id).collect();
        Vault { current, previous }
    }

    /// The operator's keys: the current one from `DIALPAD_GHL_SECRET_KEY`, else from `file`;
    /// previous ones from `DIALPAD_GHL_PREVIOUS_SECRET_KEYS` (comma-separated) and from
    /// `previous_files`. Key files must be owner-only on unix. An empty variable counts as unset.
    pub fn from_environment(file: Option<&Path>, previous_files: &[PathBuf]) -> Result<Vault, VaultError> {
        let current = environment(SECRET_KEY_ENV)?;
        let previous = environment(PREVIOUS_SECRET_KEYS_ENV)?;
        Vault::from_sources(current.as_deref().map(String::as_str), file, previous.as_deref().map(String::as_str), previous_files)
    }

    /// [`Vault::from_environment`] with the variables' values given, so tests need not change
    /// the process's environment (which other tests running at the same time read).
    fn from_sources(current_env: Option<&str>, file: Option<&Path>, previous_env: Option<&str>, previous_files: &[PathBuf]) -> Result<Vault, VaultError> {
        let current = match (current_env.filter(|text| !text.trim().is_empty()), file) {
            (Some(text), _) => SecretKey::parse(text).map_err(|error| VaultError::BadKey { from: SECRET_KEY_ENV.to_string(), error })?,
            (None, Some(path)) => read_key_file(path)?,
            (None, None) => return Err(VaultError::NoKey),
        };
        let mut previous = Vec::new();
        for (index, text) in previous_env.unwrap_or_default().split(',').map(str::trim).filter(|text| !text.is_empty()).enumerate() {
            let from = format!("{PREVIOUS_SECRET_KEYS_ENV} (key {})", index + 1);
            previous.push(SecretKey::parse(text).map_err(|error| VaultError::BadKey { from, error })?);
        }
        for path in previous_files {
            previous.push(read_key_file(path)?);
        }
        Ok(Vault::new(current, previous))
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> String {
        self.current.id()
    }

    /// `plaintext` sealed under the current key for `context`, with a fresh random nonce (two
    /// seals of one value differ).
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce);
        let ciphertext = self
            .current
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            // Fails only past the cipher's limit of 256 GiB, far beyond any secret.
            .expect("a secret small enough to seal");
        format!("{FORMAT_VERSION}.{}.{}.{}", self.current.id(), URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(ciphertext))
    }

    /// The secret in `sealed`, which must have been sealed for `context` by the current key or
    /// a previous one.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Secret, VaultError> {
        let parts = Sealed::parse(sealed)?;
        // Two keys could share an id (one chance in 2^32), so each key with the id is tried.
        let mut candidates = self.keys().filter(|key| key.id() == parts.key_id).peekable();
        if candidates.peek().is_none() {
            return Err(VaultError::UnknownKey { key_id: parts.key_id.to_string() });
        }
        for key in candidates {
            let payload = Payload { msg: &parts.ciphertext, aad: context.as_bytes() };
            if let Ok(plaintext) = key.cipher().decrypt(XNonce::from_slice(&parts.nonce), payload) {
                return match String::from_utf8(plaintext) {
                    Ok(text) => Ok(Secret::new(text)),
                    Err(error) => {
                        // Authentic but not text: not something `seal` made.
                        error.into_bytes().zeroize();
                        Err(VaultError::Malformed)
                    }
                };
            }
        }
        Err(VaultError::Tampered)
    }

    /// Whether `sealed` was sealed by a previous key (and so should be resealed before that key
    /// is retired). False for the current key's values, for unknown keys and for malformed text.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        match Sealed::parse(sealed) {
            Ok(parts) => parts.key_id != self.current.id() && self.previous.iter().any(|key| key.id() == parts.key_id),
            Err(_) => false,
        }
    }

    /// `sealed` opened and sealed again under the current key, for the same `context`.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<String, VaultError> {
        let secret = self.open(sealed, context)?;
        Ok(self.seal(secret.expose(), context))
    }

    fn keys(&self) -> impl Iterator<Item = &SecretKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

/// The `(context, sealed)` pairs among `values` that a previous key sealed, resealed under the
/// current key, for the storage layer to write back in one transaction. Every value is opened,
/// those under the current key too, so that success means each one opens with the current key
/// alone and the previous keys can be retired. The first value that does not open stops it, with
/// its context named: nothing is then to be written.
pub fn rotate_all(vault: &Vault, values: impl Iterator<Item = (String, String)>) -> Result<Vec<(String, String)>, VaultError> {
    let mut resealed = Vec::new();
    for (context, sealed) in values {
        let secret = match vault.open(&sealed, &context) {
            Ok(secret) => secret,
            Err(error) => return Err(VaultError::Value { context, error: Box::new(error) }),
        };
        if vault.needs_reseal(&sealed) {
            let value = vault.seal(secret.expose(), &context);
            resealed.push((context, value));
        }
    }
    Ok(resealed)
}

/// The parts of `v1.<key id>.<nonce>.<ciphertext>`, checked for shape only.
struct Sealed<'a> {
    key_id: &'a str,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl<'a> Sealed<'a> {
    fn parse(sealed: &'a str) -> Result<Sealed<'a>, VaultError> {
        let mut parts = sealed.split('.');
        let (Some(FORMAT_VERSION), Some(key_id), Some(nonce), Some(ciphertext), None) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VaultError::Malformed);
        };
        // The id is checked before it can appear in an error message, so that a message only
        // ever quotes 8 hex digits, never arbitrary text from the database.
        if key_id.len() != KEY_ID_LEN || !key_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(VaultError::Malformed);
        }
        let nonce = URL_SAFE_NO_PAD.decode(nonce).ok().and_then(|bytes| <[u8; NONCE_LEN]>::try_from(bytes).ok()).ok_or(VaultError::Malformed)?;
        let ciphertext = URL_SAFE_NO_PAD.decode(ciphertext).map_err(|_| VaultError::Malformed)?;
        if ciphertext.len() < TAG_LEN {
            return Err(VaultError::Malformed);
        }
        Ok(Sealed { key_id, nonce, ciphertext })
    }
}

/// An environment variable's value; one that is not Unicode cannot be a key and says so.
fn environment(name: &'static str) -> Result<Option<Zeroizing<String>>, VaultError> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(Zeroizing::new(value))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(VaultError::BadKey { from: name.to_string(), error: KeyError::NotBase64OrHex }),
    }
}

/// A key from a file that must be owner-only: a key others can read protects nothing.
fn read_key_file(path: &Path) -> Result<SecretKey, VaultError> {
    let unreadable = |error| VaultError::KeyFile { path: path.to_path_buf(), error };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The open file's mode, not the path's: the file checked is the file read.
        let mode = file.metadata().map_err(unreadable)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyFileReadableByOthers { path: path.to_path_buf(), mode });
        }
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(unreadable)?;
    SecretKey::parse(&text).map_err(|error| VaultError::BadKey { from: path.display().to_string(), error })
}

/// Why the vault has no key or cannot open a value. The messages never hold key material or
/// plaintext; at most a key's id, a file's path and a value's context.
#[derive(Debug)]
pub enum VaultError {
    /// Neither `DIALPAD_GHL_SECRET_KEY` nor a key file was given.
    NoKey,
    /// A key's text (from the named variable or file) is not a key.
    BadKey { from: String, error: KeyError },
    /// A key file could not be read.
    KeyFile { path: PathBuf, error: std::io::Error },
    /// A key file that users other than its owner can read (unix).
    KeyFileReadableByOthers { path: PathBuf, mode: u32 },
    /// Sealed by a key that is neither the current one nor a previous one.
    UnknownKey { key_id: String },
    /// Authentication failed: the bytes were changed, the context differs, or the key with the
    /// value's id is not the one that sealed it.
    Tampered,
    /// Not `v1.<key id>.<nonce>.<ciphertext>`.
    Malformed,
    /// One of [`rotate_all`]'s values did not open.
    Value { context: String, error: Box<VaultError> },
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultError::NoKey => write!(
                f,
                "no secret key: tenants' tokens and secrets are stored sealed with a key you provide. Make one with \
                 `dialpad-ghl secret-key generate > key; chmod 600 key` and give the host that file, or set {SECRET_KEY_ENV} to a key"
            ),
            VaultError::BadKey { from, error } => write!(f, "{from}: {error}"),
            VaultError::KeyFile { path, error } => write!(f, "reading the secret key file {}: {error}", path.display()),
            VaultError::KeyFileReadableByOthers { path, mode } => write!(
                f,
                "the secret key file {path} can be read by other users (mode {mode:03o}); make it owner-only with `chmod 600 {path}`",
                path = path.display()
            ),
            VaultError::UnknownKey { key_id } => write!(
                f,
                "a value was sealed with key {key_id}, which is neither the current secret key nor a previous one; if the key \
                 was changed, give the old one in {PREVIOUS_SECRET_KEYS_ENV} (comma-separated) to open such values and rotate them \
                 to the current key"
            ),
            VaultError::Tampered => f.write_str(
                "a sealed value failed authentication: its bytes were changed, or it was sealed for another row or tenant, \
                 or by a different key",
            ),
            VaultError::Malformed => f.write_str("a sealed value is malformed: expected v1.<key id>.<nonce>.<ciphertext>"),
            VaultError::Value { context, error } => write!(f, "{context}: {error}"),
        }
    }
}

// The causes are part of each message already, so `source` adds none (a chain printed with
// `{:#}` would say them twice).
impl std::error::Error for VaultError {}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &str = "tenant:acme/highlevel_refresh";

    fn vault(current: &SecretKey, previous: &[&SecretKey]) -> Vault {
        Vault::new(current.clone(), previous.iter().map(|key| (*key).clone()).collect())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_sealed_value_opens_for_its_context() {
        let vault = vault(&SecretKey::generate(), &[]);
        for plaintext in ["refresh-token-0123456789", "", "ünïcödé ☎ secret"] {
            let sealed = vault.seal(plaintext, CONTEXT);
            assert!(sealed.starts_with(&format!("v1.{}.", vault.current_key_id())), "{sealed}");
            assert_eq!(vault.open(&sealed, CONTEXT).unwrap().expose(), plaintext);
            assert!(!vault.needs_reseal(&sealed));
        }
    }

    #[test]
    fn another_context_is_refused() {
        let vault = vault(&SecretKey::generate(), &[]);
        let sealed = vault.seal("token", CONTEXT);
        for other in ["tenant:acme/highlevel_access", "tenant:globex/highlevel_refresh", ""] {
            assert!(matches!(vault.open(&sealed, other), Err(VaultError::Tampered)), "{other}");
        }
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let vault = vault(&SecretKey::generate(), &[]);
        let sealed = vault.seal("token", CONTEXT);
        let parts: Vec<&str> = sealed.split('.').collect();
        // One bit of the decoded ciphertext or nonce flipped: the authentication tag catches it.
        let mut ciphertext = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
        for index in 0..ciphertext.len() {
            ciphertext[index] ^= 1;
            let edited = format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], URL_SAFE_NO_PAD.encode(&ciphertext));
            assert!(matches!(vault.open(&edited, CONTEXT), Err(VaultError::Tampered)), "ciphertext byte {index}");
            ciphertext[index] ^= 1;
        }
        let mut nonce = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        nonce[0] ^= 0x80;
        let edited = format!("{}.{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&nonce), parts[3]);
        assert!(matches!(vault.open(&edited, CONTEXT), Err(VaultError::Tampered)));
        // Any one character of the text changed: refused one way or another, never opened.
        for index in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(bytes).unwrap();
            assert!(vault.open(&edited, CONTEXT).is_err(), "character {index}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_way_to_rotate() {
        let a = SecretKey::generate();
        let sealed = vault(&a, &[]).seal("token", CONTEXT);
        let error = vault(&SecretKey::generate(), &[]).open(&sealed, CONTEXT).unwrap_err();
        assert!(matches!(&error, VaultError::UnknownKey { key_id } if *key_id == a.id()), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&a.id()) && message.contains(PREVIOUS_SECRET_KEYS_ENV), "{message}");
    }

    #[test]
    fn malformed_values_are_refused() {
        let vault = vault(&SecretKey::generate(), &[]);
        let sealed = vault.seal("token", CONTEXT);
        let parts: Vec<&str> = sealed.split('.').collect();
        let cases = [
            String::new(),
            "token".to_string(),
            format!("v2.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("v1.{}.{}", parts[1], parts[2]),
            format!("{sealed}.extra"),
            format!("v1.{}.{}.{}", parts[1].to_uppercase(), parts[2], parts[3]),
            format!("v1.<script>.{}.{}", parts[2], parts[3]),
            format!("v1.{}.{}.{}", parts[1], &parts[2][4..], parts[3]),
            format!("v1.{}.{}.{}", parts[1], parts[2], &parts[3][..10]),
            format!("v1.{}.{}.{}=", parts[1], parts[2], parts[3]),
        ];
        for case in cases {
            assert!(matches!(vault.open(&case, CONTEXT), Err(VaultError::Malformed)), "{case}");
            assert!(!vault.needs_reseal(&case));
        }
    }

    #[test]
    fn rotation_moves_values_to_the_new_key() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        let sealed = vault(&a, &[]).seal("token", CONTEXT);
        let rotating = vault(&b, &[&a]);
        assert_eq!(rotating.open(&sealed, CONTEXT).unwrap().expose(), "token");
        assert!(rotating.needs_reseal(&sealed));
        let resealed = rotating.reseal(&sealed, CONTEXT).unwrap();
        assert!(!rotating.needs_reseal(&resealed));
        assert!(resealed.starts_with(&format!("v1.{}.", b.id())));
        assert_eq!(vault(&b, &[]).open(&resealed, CONTEXT).unwrap().expose(), "token");
        assert!(matches!(vault(&a, &[]).open(&resealed, CONTEXT), Err(VaultError::UnknownKey { .. })));
        // Resealing keeps the context bound.
        assert!(matches!(rotating.reseal(&sealed, "tenant:globex/highlevel_refresh"), Err(VaultError::Tampered)));
        // The current key given as a previous one too changes nothing.
        assert!(!vault(&b, &[&b]).needs_reseal(&resealed));
    }

    #[test]
    fn rotate_all_reseals_only_the_old_values_and_checks_every_one() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        let old = vault(&a, &[]);
        let rotating = vault(&b, &[&a]);
        let values = vec![
            ("tenant:acme/highlevel_refresh".to_string(), old.seal("acme-refresh", "tenant:acme/highlevel_refresh")),
            ("tenant:acme/dialpad_api_key".to_string(), rotating.seal("acme-key", "tenant:acme/dialpad_api_key")),
            ("tenant:globex/webhook_secret".to_string(), old.seal("globex-secret", "tenant:globex/webhook_secret")),
        ];
        let resealed = rotate_all(&rotating, values.clone().into_iter()).unwrap();
        let contexts: Vec<&str> = resealed.iter().map(|(context, _)| context.as_str()).collect();
        assert_eq!(contexts, ["tenant:acme/highlevel_refresh", "tenant:globex/webhook_secret"]);
        let new_only = vault(&b, &[]);
        assert_eq!(new_only.open(&resealed[0].1, &resealed[0].0).unwrap().expose(), "acme-refresh");
        assert_eq!(new_only.open(&resealed[1].1, &resealed[1].0).unwrap().expose(), "globex-secret");
        assert!(rotate_all(&new_only, resealed.into_iter().chain([values[1].clone()])).unwrap().is_empty());

        // A value no key opens stops the rotation, naming the value but not its contents.
        let stranger = vault(&SecretKey::generate(), &[]).seal("initech-refresh", "tenant:initech/highlevel_refresh");
        let with_stranger = values.into_iter().chain([("tenant:initech/highlevel_refresh".to_string(), stranger)]);
        let error = rotate_all(&rotating, with_stranger).unwrap_err();
        assert!(matches!(&error, VaultError::Value { error, .. } if matches!(**error, VaultError::UnknownKey { .. })), "{error:?}");
        let message = error.to_string();
        assert!(message.starts_with("tenant:initech/highlevel_refresh: a value was sealed with key"), "{message}");
        assert!(!message.contains("initech-refresh"), "{message}");
    }

    #[test]
    fn sealed_text_shows_nothing_of_the_plaintext_and_never_repeats() {
        let vault = vault(&SecretKey::generate(), &[]);
        let plaintext = "sk_live_refresh_token_ABCDEFGHIJ0123456789";
        let (one, two) = (vault.seal(plaintext, CONTEXT), vault.seal(plaintext, CONTEXT));
        assert_ne!(one, two);
        assert_ne!(one.split('.').nth(2), two.split('.').nth(2), "nonces differ");
        for sealed in [&one, &two] {
            for window in plaintext.as_bytes().windows(6) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!sealed.contains(window), "{window} in {sealed}");
            }
            assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(plaintext)[..8]));
            assert!(!sealed.contains(CONTEXT));
        }
    }

    #[test]
    fn keys_parse_from_base64_or_hex() {
        // 0xfb bytes give `+` and `/` in standard base64, `-` and `_` in URL-safe.
        let bytes = [0xfbu8; KEY_LEN];
        let standard = STANDARD.encode(bytes);
        assert!(standard.contains('+') && standard.contains('/') && standard.ends_with('='));
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(bytes);
        let texts = [
            standard.clone(),
            standard.trim_end_matches('=').to_string(),
            url_safe.clone(),
            url_safe.trim_end_matches('=').to_string(),
            hex(&bytes),
            hex(&bytes).to_uppercase(),
            format!("  {standard}\n"),
            format!("{}\r\n", hex(&bytes)),
        ];
        for text in texts {
            assert_eq!(SecretKey::parse(&text).unwrap().0, bytes, "{text:?}");
        }
        let counting: Vec<u8> = (0..32).collect();
        assert_eq!(SecretKey::parse(&hex(&counting)).unwrap().0.to_vec(), counting);
        let generated = SecretKey::generate();
        assert_eq!(generated.to_base64().len(), 44);
        assert_eq!(SecretKey::parse(&generated.to_base64()).unwrap().0, generated.0);
        assert_ne!(SecretKey::generate().0, generated.0);
    }

    #[test]
    fn bad_keys_are_refused_by_kind_without_quoting_them() {
        let cases = [
            ("", KeyError::Empty),
            (" \n", KeyError::Empty),
            ("this is not a key!", KeyError::NotBase64OrHex),
            ("YWJj+_ZGVm", KeyError::NotBase64OrHex),
            ("0123456789abcdef0123456789abcdef", KeyError::WrongLength { bytes: 16 }),
            (&"ab".repeat(33), KeyError::WrongLength { bytes: 33 }),
            ("c2hvcnQga2V5", KeyError::WrongLength { bytes: 9 }),
        ];
        for (text, expected) in cases {
            let error = SecretKey::parse(text).unwrap_err();
            assert_eq!(error, expected, "{text:?}");
            let message = error.to_string();
            assert!(message.contains("32 bytes"), "{message}");
            assert!(text.trim().is_empty() || !message.contains(text.trim()), "{message}");
        }
    }

    #[test]
    fn key_ids_name_keys_without_revealing_them() {
        let key = SecretKey::parse(&hex(&[7u8; KEY_LEN])).unwrap();
        let id = key.id();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(id, key.clone().id());
        assert_ne!(id, SecretKey::generate().id());
        // Domain-separated: not the start of the key's plain SHA-256.
        assert_ne!(id, hex(&sha2::Sha256::digest([7u8; KEY_LEN])[..4]));
        let debug = format!("{key:?}");
        assert!(debug.contains(&id) && debug.contains("redacted"), "{debug}");
        assert!(!debug.contains(&key.to_base64()) && !debug.contains("0707"), "{debug}");
        assert!(!format!("{:?}", vault(&key, &[])).contains("0707"));
    }

    #[test]
    fn keys_come_from_the_environment_before_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (SecretKey::generate(), SecretKey::generate(), SecretKey::generate());
        let file = dir.path().join("key");
        write_private(&file, &format!("{}\n", b.to_base64()));
        let old = dir.path().join("old-key");
        write_private(&old, &hex(&c.0));

        let from_env = Vault::from_sources(Some(&a.to_base64()), Some(&file), None, &[]).unwrap();
        assert_eq!(from_env.current_key_id(), a.id());
        let from_file = Vault::from_sources(Some("  "), Some(&file), None, &[]).unwrap();
        assert_eq!(from_file.current_key_id(), b.id());

        let previous_env = format!("{}, {} ,", a.to_base64(), hex(&c.0));
        let rotating = Vault::from_sources(None, Some(&file), Some(&previous_env), &[old]).unwrap();
        let ids: Vec<String> = rotating.previous.iter().map(SecretKey::id).collect();
        assert_eq!(ids, [a.id(), c.id(), c.id()]);
        assert!(rotating.needs_reseal(&vault(&c, &[]).seal("token", CONTEXT)));

        let error = Vault::from_sources(None, None, Some(&a.to_base64()), &[]).unwrap_err();
        assert!(matches!(error, VaultError::NoKey));
        let message = error.to_string();
        assert!(message.contains("dialpad-ghl secret-key generate > key; chmod 600 key") && message.contains(SECRET_KEY_ENV), "{message}");

        let error = Vault::from_sources(None, Some(&file), Some(&format!("{},c2hvcnQ", a.to_base64())), &[]).unwrap_err();
        assert!(matches!(&error, VaultError::BadKey { error: KeyError::WrongLength { .. }, .. }), "{error:?}");
        assert!(error.to_string().starts_with("DIALPAD_GHL_PREVIOUS_SECRET_KEYS (key 2): "), "{error}");

        let missing = dir.path().join("missing");
        let error = Vault::from_sources(None, Some(&missing), None, &[]).unwrap_err();
        assert!(matches!(error, VaultError::KeyFile { .. }) && error.to_string().contains("missing"), "{error}");
    }

    fn write_private(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        let key = SecretKey::generate();
        write_private(&file, &key.to_base64());
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = Vault::from_sources(None, Some(&file), None, &[]).unwrap_err();
            assert!(matches!(error, VaultError::KeyFileReadableByOthers { mode: m, .. } if m == mode), "{error:?}");
            let message = error.to_string();
            assert!(message.contains("chmod 600") && message.contains(&file.display().to_string()), "{message}");
            assert!(!message.contains(&key.to_base64()), "{message}");
            // The same refusal for a previous key's file.
            assert!(matches!(
                Vault::from_sources(Some(&SecretKey::generate().to_base64()), None, None, std::slice::from_ref(&file)),
                Err(VaultError::KeyFileReadableByOthers { .. })
            ));
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(Vault::from_sources(None, Some(&file), None, &[]).unwrap().current_key_id(), key.id());
    }
}
