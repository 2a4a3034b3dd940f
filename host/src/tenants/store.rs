//! Where tenants are kept: plain rows for what is not secret (`tenants`), and sealed rows for
//! what is (`secrets`: owner, name, sealed value; see [`crate::storage::vault`]). Each sealed
//! value is bound to its owner and name, so one moved to another row or tenant does not open.
//!
//! A generation counter (`tenant_generation`) goes up with every change, so a running `serve`
//! sees changes made by the CLI or another connection within a second, without rereading every
//! row. Deleted rows are overwritten on disk (`secure_delete`): an uninstalled tenant's sealed
//! tokens do not linger in free pages.

use super::Tenant;
use crate::capability::secret::Secret;
use crate::storage::db::{params, Db as Connection, OptionalExtension as _};
use crate::storage::vault::Vault;
use anyhow::{bail, Context as _};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, record TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS secrets (owner TEXT NOT NULL, name TEXT NOT NULL, sealed TEXT NOT NULL, PRIMARY KEY (owner, name));
     CREATE TABLE IF NOT EXISTS tenant_generation (one INTEGER PRIMARY KEY CHECK (one = 1), generation INTEGER NOT NULL);
     INSERT OR IGNORE INTO tenant_generation (one, generation) VALUES (1, 0);";

/// The tenants and their sealed secrets, in the host's SQLite file.
pub struct TenantStore {
    db: Mutex<Connection>,
    vault: Option<Arc<Vault>>,
}

/// No secret key was given, and a secret must be stored or read.
#[derive(Debug)]
pub struct NoVault;

impl std::fmt::Display for NoVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "tenants' credentials are stored encrypted: give a secret key (DIALPAD_GHL_SECRET_KEY, or --secret-key-file; \
             make one with `dialpad-ghl secret-key generate`)",
        )
    }
}

impl std::error::Error for NoVault {}

impl TenantStore {
    pub fn open(path: &Path, vault: Option<Arc<Vault>>) -> anyhow::Result<TenantStore> {
        let db = crate::storage::sqlite::open_database(path, "tenants", SCHEMA)?;
        // A deleted secret's bytes are overwritten in the file (PostgreSQL's vacuum reclaims them).
        if let Some(file) = db.sqlite() {
            file.pragma_update(None, "secure_delete", "ON")?;
        }
        Ok(TenantStore { db: Mutex::new(db), vault })
    }

    /// The vault, or the error that says how to give one.
    pub fn vault(&self) -> Result<&Vault, NoVault> {
        self.vault.as_deref().ok_or(NoVault)
    }

    pub fn has_vault(&self) -> bool {
        self.vault.is_some()
    }

    /// Goes up with every change to a tenant or a secret.
    pub fn generation(&self) -> anyhow::Result<i64> {
        Ok(self.db.lock().unwrap().query_row("SELECT generation FROM tenant_generation", [], |r| r.get(0))?)
    }

    pub fn list(&self) -> anyhow::Result<Vec<Tenant>> {
        let db = self.db.lock().unwrap();
        let mut query = db.prepare("SELECT id, record FROM tenants ORDER BY id")?;
        let rows = query.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut tenants = Vec::new();
        for row in rows {
            let (id, record) = row?;
            tenants.push(serde_json::from_str(&record).with_context(|| format!("tenant {id}: its stored record is not readable"))?);
        }
        Ok(tenants)
    }

    pub fn get(&self, id: &str) -> anyhow::Result<Option<Tenant>> {
        let db = self.db.lock().unwrap();
        let record: Option<String> = db.query_row("SELECT record FROM tenants WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        record.map(|r| serde_json::from_str(&r).with_context(|| format!("tenant {id}: its stored record is not readable"))).transpose()
    }

    /// Adds or replaces a tenant (checked first), stamping its times.
    pub fn put(&self, tenant: &Tenant) -> anyhow::Result<Tenant> {
        tenant.check()?;
        let mut tenant = tenant.clone();
        let now = crate::serve::inbox::now_ms();
        let mut db = self.db.lock().unwrap();
        let tx = db.transaction()?;
        let created: Option<String> = tx.query_row("SELECT record FROM tenants WHERE id = ?1", [&tenant.id], |r| r.get(0)).optional()?;
        tenant.created_ms = created.and_then(|r| serde_json::from_str::<Tenant>(&r).ok()).map_or(now, |t| t.created_ms);
        tenant.updated_ms = now;
        tx.execute(
            "INSERT INTO tenants (id, record) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET record = excluded.record",
            params![tenant.id, serde_json::to_string(&tenant)?],
        )?;
        bump(&tx)?;
        tx.commit()?;
        Ok(tenant)
    }

    /// Removes a tenant and erases every secret it had; false when there was none.
    pub fn remove(&self, id: &str) -> anyhow::Result<bool> {
        let mut db = self.db.lock().unwrap();
        let tx = db.transaction()?;
        let removed = tx.execute("DELETE FROM tenants WHERE id = ?1", [id])? > 0;
        tx.execute("DELETE FROM secrets WHERE owner = ?1", [super::owner(id)])?;
        bump(&tx)?;
        tx.commit()?;
        drop(db);
        self.compact()?;
        Ok(removed)
    }

    /// Seals and stores one secret of `owner` (`tenant:<id>` or `agency:<company>`).
    pub fn set_secret(&self, owner: &str, name: &str, value: &Secret) -> anyhow::Result<()> {
        let sealed = self.vault()?.seal(value.expose(), &context(owner, name));
        let db = self.db.lock().unwrap();
        db.execute(
            "INSERT INTO secrets (owner, name, sealed) VALUES (?1, ?2, ?3) ON CONFLICT(owner, name) DO UPDATE SET sealed = excluded.sealed",
            params![owner, name, sealed],
        )?;
        bump(&db)?;
        Ok(())
    }

    /// One secret, opened; `None` when it was never stored.
    pub fn secret(&self, owner: &str, name: &str) -> anyhow::Result<Option<Secret>> {
        let sealed: Option<String> = {
            let db = self.db.lock().unwrap();
            db.query_row("SELECT sealed FROM secrets WHERE owner = ?1 AND name = ?2", params![owner, name], |r| r.get(0)).optional()?
        };
        let Some(sealed) = sealed else { return Ok(None) };
        Ok(Some(self.vault()?.open(&sealed, &context(owner, name)).with_context(|| format!("opening {owner}'s {name}"))?))
    }

    /// The agencies whose token is stored (their company ids).
    pub fn agencies(&self) -> anyhow::Result<Vec<String>> {
        let db = self.db.lock().unwrap();
        let mut query = db.prepare("SELECT substr(owner, 8) FROM secrets WHERE owner LIKE 'agency:%' AND name = ?1 ORDER BY owner")?;
        let rows = query.query_map([super::secret_names::AGENCY_REFRESH], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Erases one secret (a disconnected Dialpad's key).
    pub fn remove_secret(&self, owner: &str, name: &str) -> anyhow::Result<()> {
        let db = self.db.lock().unwrap();
        db.execute("DELETE FROM secrets WHERE owner = ?1 AND name = ?2", params![owner, name])?;
        bump(&db)?;
        Ok(())
    }

    /// Erases every secret of an owner (an uninstalled agency's).
    pub fn remove_secrets(&self, owner: &str) -> anyhow::Result<()> {
        {
            let db = self.db.lock().unwrap();
            db.execute("DELETE FROM secrets WHERE owner = ?1", [owner])?;
            bump(&db)?;
        }
        self.compact()
    }

    /// Reseals, under the vault's current key, every secret sealed by a previous one; returns
    /// how many (in one transaction: all or none).
    pub fn rotate(&self) -> anyhow::Result<usize> {
        let vault = self.vault()?;
        let mut db = self.db.lock().unwrap();
        let tx = db.transaction()?;
        let rows: Vec<(String, String, String)> = {
            let mut query = tx.prepare("SELECT owner, name, sealed FROM secrets")?;
            let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut resealed = 0;
        for (owner, name, sealed) in rows {
            if vault.needs_reseal(&sealed) {
                let fresh = vault.reseal(&sealed, &context(&owner, &name)).with_context(|| format!("resealing {owner}'s {name}"))?;
                tx.execute("UPDATE secrets SET sealed = ?3 WHERE owner = ?1 AND name = ?2", params![owner, name, fresh])?;
                resealed += 1;
            }
        }
        bump(&tx)?;
        tx.commit()?;
        drop(db);
        self.compact()?;
        Ok(resealed)
    }

    /// Gives freed pages back and empties the write-ahead log, so erased rows leave no copy.
    fn compact(&self) -> anyhow::Result<()> {
        let db = self.db.lock().unwrap();
        db.execute_batch("PRAGMA incremental_vacuum")?;
        if let Err(e) = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!("tenants: checkpointing after an erase: {e}");
        }
        Ok(())
    }
}

/// What a sealed value is bound to.
fn context(owner: &str, name: &str) -> String {
    format!("{owner}/{name}")
}

fn bump(db: &Connection) -> anyhow::Result<()> {
    if db.execute("UPDATE tenant_generation SET generation = generation + 1", [])? != 1 {
        bail!("the tenant generation row is missing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::vault::SecretKey;
    use crate::tenants::HighLevelAuth;

    fn tenant(id: &str) -> Tenant {
        Tenant {
            id: id.into(),
            location_id: format!("L-{id}"),
            company_id: None,
            name: String::new(),
            config: Default::default(),
            highlevel: HighLevelAuth::PrivateToken,
            scopes: Vec::new(),
            dialpad: None,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    fn raw_rows(path: &Path) -> String {
        let db = rusqlite::Connection::open(path).unwrap();
        let mut query = db.prepare("SELECT owner || name || sealed FROM secrets").unwrap();
        let rows = query.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn secrets_are_sealed_bound_to_their_owner_and_erased_with_their_tenant() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        let store = TenantStore::open(&path, Some(Arc::new(Vault::new(SecretKey::generate(), vec![])))).unwrap();
        let before = store.generation().unwrap();
        store.put(&tenant("acme")).unwrap();
        store.put(&tenant("globex")).unwrap();
        store.set_secret("tenant:acme", "highlevel_token", &Secret::new("pit-acme-plain")).unwrap();
        store.set_secret("tenant:globex", "highlevel_token", &Secret::new("pit-globex-plain")).unwrap();
        assert!(store.generation().unwrap() > before);
        assert!(!raw_rows(&path).contains("plain"), "a secret is stored in the clear");
        assert_eq!(store.secret("tenant:acme", "highlevel_token").unwrap().unwrap().expose(), "pit-acme-plain");
        // A sealed value copied to another tenant's row does not open.
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE owner = 'tenant:acme') WHERE owner = 'tenant:globex'", []).unwrap();
        assert!(store.secret("tenant:globex", "highlevel_token").is_err());
        assert!(store.remove("acme").unwrap());
        assert_eq!(store.secret("tenant:acme", "highlevel_token").unwrap(), None);
        assert_eq!(store.list().unwrap().iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["globex"]);
        assert!(!store.remove("acme").unwrap());
    }

    #[test]
    fn a_key_rotation_reseals_every_secret_under_the_new_key() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        let (old, new) = (SecretKey::generate(), SecretKey::generate());
        let store = TenantStore::open(&path, Some(Arc::new(Vault::new(old.clone(), vec![])))).unwrap();
        store.set_secret("tenant:acme", "webhook_secret", &Secret::new("whsec-1")).unwrap();
        store.set_secret("agency:c1", "refresh", &Secret::new("refresh-1")).unwrap();
        drop(store);
        // The new key current, the old one previous: everything opens, and rotates.
        let rotating = TenantStore::open(&path, Some(Arc::new(Vault::new(new.clone(), vec![old.clone()])))).unwrap();
        assert_eq!(rotating.rotate().unwrap(), 2);
        assert_eq!(rotating.rotate().unwrap(), 0, "nothing left under the old key");
        drop(rotating);
        let only_new = TenantStore::open(&path, Some(Arc::new(Vault::new(new, vec![])))).unwrap();
        assert_eq!(only_new.secret("agency:c1", "refresh").unwrap().unwrap().expose(), "refresh-1");
        let only_old = TenantStore::open(&path, Some(Arc::new(Vault::new(old, vec![])))).unwrap();
        assert!(only_old.secret("tenant:acme", "webhook_secret").unwrap_err().to_string().contains("opening"));
        // Without a key, secrets can be neither stored nor read, and the error says how to give one.
        let keyless = TenantStore::open(&path, None).unwrap();
        assert!(keyless.secret("tenant:acme", "webhook_secret").unwrap_err().to_string().contains("secret-key generate"));
    }
}
