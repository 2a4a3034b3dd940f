//! Host-side bindings of the plugin's world (`wit/sync.wit`, world `plugin-core`).
//! `wasi:config` is served by `wasmtime-wasi-config`; `wasi:keyvalue` by
//! [`crate::capability::keyvalue`].

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin-core",
    imports: { default: trappable },
    // Called on an async store: one entry into the runtime per call, not one per `wasi:io`
    // wait (the synchronous bindings' `block_on` each time).
    exports: { default: async },
    additional_derives: [PartialEq],
    with: { "wasi:keyvalue/store.bucket": crate::capability::keyvalue::bucket::BucketHandle },
});
