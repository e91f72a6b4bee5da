//! Evaluation cost against 1, 100 and 10,000 rules, scope parsing, decoding the whole
//! compiled form, and a cold request (compiled form read in place, then evaluated).
//! Targets: one request (two scopes) against 10,000 rules under 20 µs warm, 50 µs cold.
//!
//! Rules are spread over distinct leading literal paths (`repository:nsN/**`), plus a few
//! rules every request must look at (`**`, `{account}/**`), as a large real policy would be.
#![allow(clippy::panic)] // A bench that cannot set up must stop loudly.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use scopegate_policy::{parse_scopes, Caller, CompiledPolicy, CredentialKind, Policy};

/// A policy of `count` rules; requests below hit rule `count / 2`'s namespace.
fn policy_text(count: usize) -> String {
    let mut text = String::from("[groups]\nteam = [\"alice\"]\nadmins = [\"root\"]\n\n");
    let wildcard_rules = [
        "[[deny]]\nwho = [\"kind:deploy\"]\nwhat = [\"repository:**\"]\nactions = [\"delete\"]\n\n",
        "[[allow]]\nwho = [\"authenticated\"]\nwhat = [\"repository:{account}/**\"]\nactions = [\"*\"]\n\n",
        "[[allow]]\nwho = [\"anyone\"]\nwhat = [\"repository:**/cache\"]\nactions = [\"pull\"]\n\n",
    ];
    let literal_rules = count.saturating_sub(wildcard_rules.len()).max(1);
    for i in 0..literal_rules {
        text.push_str(&format!(
            "[[allow]]\nwho = [\"group:team\"]\nwhat = [\"repository:ns{i}/**\"]\nactions = [\"pull\", \"push\"]\n\n"
        ));
    }
    for rule in wildcard_rules
        .iter()
        .take(count.saturating_sub(literal_rules))
    {
        text.push_str(rule);
    }
    text
}

fn evaluate(c: &mut Criterion) {
    let mut group = c.benchmark_group("evaluate");
    for count in [1usize, 100, 10_000] {
        let text = policy_text(count);
        let policy =
            Policy::from_toml([("bench.toml", text.as_str())]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(policy.rule_count(), count);
        let target = (count.saturating_sub(3).max(1)) / 2;
        let request = format!("repository:ns{target}/app:pull,push repository:alice/tools:*");
        let scopes = parse_scopes([request.as_str()]).unwrap_or_else(|e| panic!("{e}"));
        let groups = Vec::new();
        let caller = Caller {
            account: Some("alice"),
            groups: &groups,
            kind: Some(CredentialKind::Password),
            workload: None,
        };
        let grant = policy.evaluate(&caller, &scopes, None);
        assert!(!grant.access.is_empty());
        group.bench_with_input(BenchmarkId::new("rules", count), &count, |b, _| {
            b.iter(|| policy.evaluate(black_box(&caller), black_box(&scopes), None))
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_scopes");
    let one = "repository:team/app:pull,push";
    let many =
        "repository:localhost:5000/team/app:pull,push repository:team/base:pull registry:catalog:*";
    group.bench_function("one", |b| b.iter(|| parse_scopes([black_box(one)])));
    group.bench_function("three_space_joined", |b| {
        b.iter(|| parse_scopes([black_box(many)]))
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("from_compiled");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let policy = Policy::load_dir(&shipped).unwrap_or_else(|e| panic!("{e}"));
    let bytes = policy.to_compiled();
    group.bench_function("shipped", |b| {
        b.iter(|| Policy::from_compiled(black_box(&bytes)))
    });
    for count in [100usize, 10_000] {
        let text = policy_text(count);
        let bytes = Policy::from_toml([("bench.toml", text.as_str())])
            .unwrap_or_else(|e| panic!("{e}"))
            .to_compiled();
        group.bench_with_input(BenchmarkId::new("rules", count), &bytes, |b, bytes| {
            b.iter(|| Policy::from_compiled(black_box(bytes)))
        });
    }
    group.finish();
}

/// What a fresh instance pays per request: read the compiled form in place and evaluate
/// two scopes (decoding only the rules they could match). Target: 10,000 rules under 50 µs.
fn cold(c: &mut Criterion) {
    let mut group = c.benchmark_group("cold_evaluate");
    for count in [1usize, 100, 10_000] {
        let text = policy_text(count);
        let bytes = Policy::from_toml([("bench.toml", text.as_str())])
            .unwrap_or_else(|e| panic!("{e}"))
            .to_compiled();
        let target = (count.saturating_sub(3).max(1)) / 2;
        let request = format!("repository:ns{target}/app:pull,push repository:alice/tools:*");
        let scopes = parse_scopes([request.as_str()]).unwrap_or_else(|e| panic!("{e}"));
        let groups = Vec::new();
        let caller = Caller {
            account: Some("alice"),
            groups: &groups,
            kind: Some(CredentialKind::Password),
            workload: None,
        };
        let whole = Policy::from_compiled(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let compiled = CompiledPolicy::new(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            compiled.evaluate(&caller, &scopes, None),
            whole.evaluate(&caller, &scopes, None)
        );
        group.bench_with_input(BenchmarkId::new("rules", count), &bytes, |b, bytes| {
            b.iter(|| {
                CompiledPolicy::new(black_box(bytes))
                    .map(|policy| policy.evaluate(black_box(&caller), black_box(&scopes), None))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = evaluate, parse, decode, cold
}
criterion_main!(benches);
