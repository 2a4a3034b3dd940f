//! `wasi:keyvalue/store` for the plugin, as a unit with its own linker wiring: the engine gives
//! it a view of the shared store and the instance's resource table, and nothing else.

use super::bucket::BucketHandle;
use super::store::KeyValueStore;
use crate::bindings::wasi::keyvalue::batch;
use crate::bindings::wasi::keyvalue::store::{self, Error, KeyResponse};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// What the store's host functions see of one instance's state.
pub struct KeyValueHost<'a> {
    pub store: &'a KeyValueStore,
    pub table: &'a mut ResourceTable,
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueHost<'a>;
}

/// Links `wasi:keyvalue/store` and `wasi:keyvalue/batch`; `view` picks the store and the table
/// out of the host state.
pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> KeyValueHost<'_>) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasKeyValue>(linker, view)?;
    batch::add_to_linker::<T, HasKeyValue>(linker, view)
}

/// Keys listed per `list-keys` page.
const PAGE: usize = 100;

impl store::Host for KeyValueHost<'_> {
    fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<BucketHandle>, Error>> {
        if !identifier.is_empty() {
            return Ok(Err(Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(BucketHandle)?))
    }
}

impl store::HostBucket for KeyValueHost<'_> {
    fn get(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.table.get(&bucket)?;
        Ok(self.store.try_get(&key).map_err(Error::Other))
    }

    fn set(&mut self, bucket: Resource<BucketHandle>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        Ok(self.store.try_set(&key, &value).map_err(Error::Other))
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        Ok(self.store.try_delete(&key).map_err(Error::Other))
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        self.table.get(&bucket)?;
        Ok(self.store.try_get(&key).map(|v| v.is_some()).map_err(Error::Other))
    }

    fn list_keys(&mut self, bucket: Resource<BucketHandle>, cursor: Option<u64>) -> wasmtime::Result<Result<KeyResponse, Error>> {
        self.table.get(&bucket)?;
        let start = cursor.unwrap_or(0) as usize;
        let keys = match self.store.try_keys() {
            Ok(keys) => keys,
            Err(e) => return Ok(Err(Error::Other(e))),
        };
        let page: Vec<String> = keys.iter().skip(start).take(PAGE).cloned().collect();
        let next = (start + page.len() < keys.len()).then_some((start + page.len()) as u64);
        Ok(Ok(KeyResponse { keys: page, cursor: next }))
    }

    fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

/// One call for several keys: an event's records are read together (`get-many`). Writes and
/// deletes are one key at a time, in order, as `set` and `delete` do them.
impl batch::Host for KeyValueHost<'_> {
    fn get_many(&mut self, bucket: Resource<BucketHandle>, keys: Vec<String>) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, Error>> {
        self.table.get(&bucket)?;
        Ok(self
            .store
            .try_get_many(&keys)
            .map(|values| keys.into_iter().zip(values).map(|(key, value)| value.map(|value| (key, value))).collect())
            .map_err(Error::Other))
    }

    fn set_many(&mut self, bucket: Resource<BucketHandle>, key_values: Vec<(String, Vec<u8>)>) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        for (key, value) in key_values {
            if let Err(e) = self.store.try_set(&key, &value) {
                return Ok(Err(Error::Other(e)));
            }
        }
        Ok(Ok(()))
    }

    fn delete_many(&mut self, bucket: Resource<BucketHandle>, keys: Vec<String>) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        for key in keys {
            if let Err(e) = self.store.try_delete(&key) {
                return Ok(Err(Error::Other(e)));
            }
        }
        Ok(Ok(()))
    }
}
