//! Measures the password paths natively: a wrong password for a known user
//! (hashes at both ends of the accepted band) against an unknown user, a
//! disabled user and a stored hash outside the band. Every path should cost
//! the same argon2 work (`password::WORK`); this prints the figures, it
//! asserts nothing.
//!
//! `cargo run --example password_paths [ROUNDS]` (dependencies, argon2
//! included, are optimised in the dev profile; `--release` works too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use scopegate::authenticate::{authenticate_secret, Lockout, PasswordSettings, Workloads};
use scopegate::records::{encode, UserRecord, VERSION};
use scopegate::store::{MemoryStore, Store};

const SETTINGS: PasswordSettings = PasswordSettings {
    lockout: Lockout {
        threshold: 0,
        seconds: 0,
    },
    cache_key: None,
    cache_seconds: 0,
};

fn phc(memory: u32, iterations: u32, parallelism: u32) -> String {
    let salt = SaltString::encode_b64(b"benchmark-salt-1").unwrap();
    let params = Params::new(memory, iterations, parallelism, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(b"the right password", &salt)
        .unwrap()
        .to_string()
}

fn add_user(store: &MemoryStore, name: &str, password: String, disabled: bool) {
    let user = UserRecord {
        v: VERSION,
        password,
        groups: vec![],
        disabled,
        created_at: 0,
        id: Some(name.into()),
        password_epoch: None,
    };
    store.set(&format!("user/{name}"), &encode(&user)).unwrap();
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let store = MemoryStore::new();
    add_user(&store, "default", phc(19456, 2, 1), false);
    add_user(&store, "low-edge", phc(7168, 5, 1), false);
    // Four lanes: refused since p must be 1 (it measured ~5% slower).
    add_user(&store, "four-lanes", phc(19456, 2, 4), false);
    add_user(&store, "disabled", phc(19456, 2, 1), true);
    // argon2-cffi's default: refused at import; if written to the store
    // directly it is not run, the login costs the standard work.
    add_user(&store, "cffi", phc(65536, 3, 4), false);
    let paths = [
        ("known user m=19456,t=2,p=1, wrong password", "default"),
        (
            "known user m=7168,t=5,p=1 (padded), wrong password",
            "low-edge",
        ),
        ("stored m=19456,t=2,p=4 (out of band)", "four-lanes"),
        ("unknown user", "nobody"),
        ("disabled user", "disabled"),
        ("stored m=65536,t=3,p=4 (out of band)", "cffi"),
    ];
    let workloads = Workloads {
        policy: scopegate::grant::policy().expect("the build's policy"),
        fetch: &scopegate::oidc::NoNetwork,
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); paths.len()];
    // Interleaved rounds, so CPU-speed drift hits every path alike.
    for _ in 0..rounds {
        for (index, (_, user)) in paths.iter().enumerate() {
            let started = Instant::now();
            let result =
                authenticate_secret(user, "a wrong password", &store, &SETTINGS, &workloads, 1);
            samples[index].push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(result.is_err());
        }
    }
    println!("{rounds} rounds, milliseconds per login attempt");
    println!("{:<52} {:>8} {:>8} {:>8}", "path", "p10", "median", "p90");
    for ((name, _), times) in paths.iter().zip(&mut samples) {
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{name:<52} {:>8.2} {:>8.2} {:>8.2}",
            at(0.1),
            at(0.5),
            at(0.9)
        );
    }
}
