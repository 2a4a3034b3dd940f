//! The `bucket` resource's host type, in a module of its own: the generated bindings name it
//! (`with:`), and the store's host implementation uses those bindings.

/// What a `bucket` resource points at: there is one store, so nothing.
pub struct BucketHandle;
