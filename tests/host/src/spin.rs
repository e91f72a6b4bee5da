//! Host side of the two Spin interfaces scopegate imports:
//! `fermyon:spin/key-value@2.0.0` and `fermyon:spin/variables@2.0.0`.
//!
//! The functions are declared directly on wasmtime's component [`Linker`];
//! their names and types follow the WIT shipped in the spin-sdk crate.

use std::sync::atomic::Ordering;

use wasmtime::component::{
    ComponentType, Lift, Linker, LinkerInstance, Lower, Resource, ResourceType,
};
use wasmtime::{Result, StoreContextMut};

use crate::state::{lock, RequestState};

/// The only key-value store label the host knows, as with a Spin manifest that
/// says `key_value_stores = ["default"]`.
pub(crate) const DEFAULT_STORE: &str = "default";

/// Host-side marker for the `store` resource; every open handle refers to the
/// one shared in-memory map.
pub(crate) struct KvStore;

/// The `error` variant of `fermyon:spin/key-value`.
#[derive(ComponentType, Lift, Lower, Debug, Clone)]
#[component(variant)]
pub(crate) enum KvError {
    #[allow(dead_code)] // part of the WIT type, never raised here
    #[component(name = "store-table-full")]
    StoreTableFull,
    #[component(name = "no-such-store")]
    NoSuchStore,
    #[allow(dead_code)] // part of the WIT type, never raised here
    #[component(name = "access-denied")]
    AccessDenied,
    #[allow(dead_code)] // part of the WIT type, never raised here
    #[component(name = "other")]
    Other(String),
}

/// The `error` variant of `fermyon:spin/variables`.
#[derive(ComponentType, Lift, Lower, Debug, Clone)]
#[component(variant)]
pub(crate) enum VarError {
    #[component(name = "invalid-name")]
    InvalidName(String),
    #[component(name = "undefined")]
    Undefined(String),
    #[allow(dead_code)] // part of the WIT type, never raised here
    #[component(name = "provider")]
    Provider(String),
    #[allow(dead_code)] // part of the WIT type, never raised here
    #[component(name = "other")]
    Other(String),
}

type Cx<'a> = StoreContextMut<'a, RequestState>;
type KvResult<T> = Result<(std::result::Result<T, KvError>,)>;

/// Add both Spin interfaces to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<RequestState>) -> Result<()> {
    add_key_value(&mut linker.instance("fermyon:spin/key-value@2.0.0")?)?;
    add_variables(&mut linker.instance("fermyon:spin/variables@2.0.0")?)?;
    Ok(())
}

fn add_key_value(kv: &mut LinkerInstance<'_, RequestState>) -> Result<()> {
    kv.resource("store", ResourceType::host::<KvStore>(), |mut cx, rep| {
        cx.data_mut()
            .table
            .delete(Resource::<KvStore>::new_own(rep))?;
        Ok(())
    })?;

    kv.func_wrap(
        "[static]store.open",
        |mut cx: Cx<'_>, (label,): (String,)| -> KvResult<Resource<KvStore>> {
            if label != DEFAULT_STORE {
                return Ok((Err(KvError::NoSuchStore),));
            }
            Ok((Ok(cx.data_mut().table.push(KvStore)?),))
        },
    )?;

    kv.func_wrap(
        "[method]store.get",
        |cx: Cx<'_>, (this, key): (Resource<KvStore>, String)| -> KvResult<Option<Vec<u8>>> {
            let data = cx.data();
            data.table.get(&this)?;
            data.shared.stats.gets.fetch_add(1, Ordering::Relaxed);
            Ok((Ok(lock(&data.shared.kv).get(&key).cloned()),))
        },
    )?;

    // `set` may sleep to mimic the fsync of Spin's SQLite store; sets are then
    // serialised, as they are behind Spin's single SQLite connection.
    kv.func_wrap_async(
        "[method]store.set",
        |cx: Cx<'_>, (this, key, value): (Resource<KvStore>, String, Vec<u8>)| {
            Box::new(async move {
                let data = cx.data();
                data.table.get(&this)?;
                let shared = data.shared.clone();
                shared.stats.sets.fetch_add(1, Ordering::Relaxed);
                if shared.set_delay.is_zero() {
                    lock(&shared.kv).insert(key, value);
                } else {
                    let _disk = shared.disk.lock().await;
                    tokio::time::sleep(shared.set_delay).await;
                    lock(&shared.kv).insert(key, value);
                }
                Ok((Ok::<(), KvError>(()),))
            })
        },
    )?;

    kv.func_wrap(
        "[method]store.delete",
        |cx: Cx<'_>, (this, key): (Resource<KvStore>, String)| -> KvResult<()> {
            let data = cx.data();
            data.table.get(&this)?;
            data.shared.stats.deletes.fetch_add(1, Ordering::Relaxed);
            lock(&data.shared.kv).remove(&key);
            Ok((Ok(()),))
        },
    )?;

    kv.func_wrap(
        "[method]store.exists",
        |cx: Cx<'_>, (this, key): (Resource<KvStore>, String)| -> KvResult<bool> {
            let data = cx.data();
            data.table.get(&this)?;
            data.shared.stats.exists.fetch_add(1, Ordering::Relaxed);
            Ok((Ok(lock(&data.shared.kv).contains_key(&key)),))
        },
    )?;

    kv.func_wrap(
        "[method]store.get-keys",
        |cx: Cx<'_>, (this,): (Resource<KvStore>,)| -> KvResult<Vec<String>> {
            let data = cx.data();
            data.table.get(&this)?;
            data.shared.stats.get_keys.fetch_add(1, Ordering::Relaxed);
            Ok((Ok(lock(&data.shared.kv).keys().cloned().collect()),))
        },
    )?;
    Ok(())
}

fn add_variables(vars: &mut LinkerInstance<'_, RequestState>) -> Result<()> {
    vars.func_wrap(
        "get",
        |cx: Cx<'_>, (name,): (String,)| -> Result<(std::result::Result<String, VarError>,)> {
            if let Err(why) = check_variable_name(&name) {
                return Ok((Err(VarError::InvalidName(why)),));
            }
            Ok((cx
                .data()
                .shared
                .variables
                .get(&name)
                .cloned()
                .ok_or_else(|| VarError::Undefined(format!("no variable for {name:?}"))),))
        },
    )?;
    Ok(())
}

/// Spin's rule for variable names: lowercase ASCII letters, digits and single
/// underscores, starting with a letter and not ending with an underscore.
pub(crate) fn check_variable_name(name: &str) -> std::result::Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid variable name {name:?}: must be lowercase letters, digits and single \
             underscores, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::check_variable_name;

    #[test]
    fn variable_names_follow_spin_rules() {
        for good in ["a", "issuer", "token_ttl_secs", "key2"] {
            assert!(check_variable_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Issuer", "_a", "a_", "a__b", "2a", "a-b", "a.b"] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
    }
}
