//! `wasi:config/store` for the plugin: the variables it may read (the key `config` holds its
//! JSON configuration). Served by `wasmtime-wasi-config`; nothing else of the host is visible.

use wasmtime::component::Linker;
use wasmtime_wasi_config::WasiConfig;

/// Links `wasi:config/store`; `view` picks the instance's variables out of the host state.
pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> WasiConfig<'_>) -> wasmtime::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, view)
}
