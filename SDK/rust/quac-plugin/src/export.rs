//! The library's entry point and factory over a static list of plugins, and the `export!` macro that
//! declares them.

use crate::abi::*;
use crate::host::Host;
use crate::plugin::{guard, CreateFn};
use crate::error::Error;
use std::ffi::CStr;
use std::os::raw::c_char;

/// One plugin of the library: its descriptor (static strings) and its create function.
pub struct PluginDef {
    pub descriptor: quac_plugin_descriptor,
    pub create: CreateFn,
}
// Descriptors hold pointers to static strings only.
unsafe impl Sync for PluginDef {}

/// The factory the host sees (`factory` first) and the plugins it serves.
#[repr(C)]
pub struct Library {
    pub factory: quac_plugin_factory,
    pub plugins: &'static [PluginDef],
}
unsafe impl Sync for Library {}

impl Library {
    pub const fn new(plugins: &'static [PluginDef]) -> Library {
        Library {
            factory: quac_plugin_factory {
                struct_size: std::mem::size_of::<quac_plugin_factory>() as u32,
                count: Some(count),
                get_descriptor: Some(get_descriptor),
                create: Some(create),
            },
            plugins,
        }
    }
}

unsafe fn library<'a>(f: *const quac_plugin_factory) -> &'a Library {
    &*(f as *const Library)
}

unsafe extern "C" fn count(f: *const quac_plugin_factory) -> u32 {
    library(f).plugins.len() as u32
}

unsafe extern "C" fn get_descriptor(f: *const quac_plugin_factory, index: u32) -> *const quac_plugin_descriptor {
    library(f).plugins.get(index as usize).map_or(std::ptr::null(), |p| &p.descriptor as *const _)
}

unsafe extern "C" fn create(
    f: *const quac_plugin_factory,
    host: *const quac_host,
    plugin_id: *const c_char,
    params_json: *const c_char,
    out: *mut *const quac_plugin,
) -> quac_status {
    let lib = library(f);
    let id = if plugin_id.is_null() { &[][..] } else { CStr::from_ptr(plugin_id).to_bytes() };
    for p in lib.plugins {
        if CStr::from_ptr(p.descriptor.id).to_bytes() == id {
            return (p.create)(host, &p.descriptor, params_json, out);
        }
    }
    guard(Some(Host::from_raw(host)), || {
        Err(Error::invalid(format!("this library has no plugin {}", String::from_utf8_lossy(id))))
    })
}

/// What `quac_plugin_entry` returns.
pub struct Entry(pub quac_plugin_entry_v1);
unsafe impl Sync for Entry {}

impl Entry {
    pub const fn new(library: &'static Library) -> Entry {
        Entry(quac_plugin_entry_v1 {
            abi_major: QUAC_ABI_VERSION_MAJOR,
            abi_minor: QUAC_ABI_VERSION_MINOR,
            init: None,
            deinit: None,
            factory: &library.factory as *const quac_plugin_factory,
        })
    }
}

/// The body of the exported entry: the entry for a host of the same major version, NULL otherwise.
pub fn entry(e: &'static Entry, host_major: u32) -> *const quac_plugin_entry_v1 {
    if host_major == QUAC_ABI_VERSION_MAJOR {
        &e.0
    } else {
        std::ptr::null()
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __quac_kind {
    (attributor) => { $crate::abi::QUAC_KIND_ATTRIBUTOR };
    (scorer) => { $crate::abi::QUAC_KIND_SCORER };
    (converter) => { $crate::abi::QUAC_KIND_CONVERTER };
    (classifier) => { $crate::abi::QUAC_KIND_CLASSIFIER };
}

/// Exports the library's plugins: defines `quac_plugin_entry` and a factory over them.
///
/// ```ignore
/// quac_plugin::export! {
///     Saliency => attributor {
///         id: "org.example.saliency", name: "Saliency", version: "1.0.0",
///         description: "|d f_y / d x|",
///     },
/// }
/// ```
/// The kind (attributor, scorer, converter, classifier) names the trait the type implements. The
/// attribute on the entry is written here, so a crate of any edition (2024's `unsafe(no_mangle)`
/// included) exports it the same way.
#[macro_export]
macro_rules! export {
    ($($ty:ty => $kind:ident { id: $id:literal, name: $name:literal, version: $version:literal, description: $desc:literal $(,)? }),+ $(,)?) => {
        static QUAC_PLUGINS: &[$crate::PluginDef] = &[$(
            $crate::PluginDef {
                descriptor: $crate::abi::quac_plugin_descriptor {
                    struct_size: ::std::mem::size_of::<$crate::abi::quac_plugin_descriptor>() as u32,
                    id: concat!($id, "\0").as_ptr() as *const ::std::os::raw::c_char,
                    name: concat!($name, "\0").as_ptr() as *const ::std::os::raw::c_char,
                    version: concat!($version, "\0").as_ptr() as *const ::std::os::raw::c_char,
                    description: concat!($desc, "\0").as_ptr() as *const ::std::os::raw::c_char,
                    kind: $crate::__quac_kind!($kind),
                    flags: 0,
                },
                create: $crate::glue::$kind::<$ty>,
            }
        ),+];
        static QUAC_LIBRARY: $crate::Library = $crate::Library::new(QUAC_PLUGINS);
        static QUAC_ENTRY: $crate::Entry = $crate::Entry::new(&QUAC_LIBRARY);

        #[no_mangle]
        pub extern "C" fn quac_plugin_entry(host_major: u32, _host_minor: u32) -> *const $crate::abi::quac_plugin_entry_v1 {
            $crate::entry(&QUAC_ENTRY, host_major)
        }
    };
}
