//! deploy/kubernetes/ checked offline, without a cluster: what
//! `kubectl apply -k` would send for each kustomization, every SpinApp
//! against spin-operator's CRD schema and admission rules, the other
//! objects against their kinds' required fields, the variables against
//! spin.toml, every Secret and ConfigMap reference against what the build
//! holds, and the registry's token configuration against scopegate's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "deploy/kustomize.rs"]
mod kustomize;
#[path = "deploy/openapi.rs"]
mod openapi;

use kustomize::Object;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A change that breaks a manifest, for the negative tests.
type Breakage = dyn Fn(&mut Value);

fn kubernetes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// The kustomizations an operator applies: fixed replicas, autoscaling.
const BUILDS: &[&str] = &["base", "autoscaling"];

fn builds() -> Vec<(&'static str, Vec<Object>)> {
    BUILDS
        .iter()
        .map(|name| (*name, kustomize::build(&kubernetes_dir().join(name))))
        .collect()
}

fn of_kind<'a>(objects: &'a [Object], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .map(|object| &object.value)
        .filter(|value| value["kind"] == kind)
        .collect()
}

fn named<'a>(objects: &'a [Object], kind: &str, name: &str) -> Option<&'a Value> {
    of_kind(objects, kind)
        .into_iter()
        .find(|value| value["metadata"]["name"] == name)
}

/// The CRD's schema of its served version, and its group/version and kind.
fn spinapp_schema() -> (String, String, Value) {
    let crd = kustomize::documents(&kubernetes_dir().join("schema/spinapp-crd.yaml"));
    let [crd] = &crd[..] else {
        panic!("one CustomResourceDefinition expected");
    };
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|version| version["served"] == true && version["storage"] == true)
        .expect("a served storage version");
    (
        format!(
            "{}/{}",
            crd["spec"]["group"].as_str().unwrap(),
            version["name"].as_str().unwrap()
        ),
        crd["spec"]["names"]["kind"].as_str().unwrap().to_string(),
        version["schema"]["openAPIV3Schema"].clone(),
    )
}

/// `[variables]` of spin.toml: name -> (required, secret).
fn spin_variables() -> BTreeMap<String, (bool, bool)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("spin.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["variables"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(name, spec)| {
            let flag = |key: &str| spec.get(key).and_then(toml::Value::as_bool) == Some(true);
            (name.clone(), (flag("required"), flag("secret")))
        })
        .collect()
}

/// Problems of one SpinApp beyond its schema: spin-operator's admission
/// rules (an executor; `replicas` only without autoscaling, then at least
/// one) and this deployment's own (at least two replicas, a `/healthz`
/// liveness and readiness check, Spin's `default` store on Redis).
fn spinapp_rules(app: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let spec = &app["spec"];
    if spec["executor"].as_str().unwrap_or_default().is_empty() {
        problems.push("spec.executor must be set".to_string());
    }
    if spec["executor"] != "containerd-shim-spin" {
        problems.push("spec.executor is not containerd-shim-spin".to_string());
    }
    let is_autoscaled = spec["enableAutoscaling"] == true;
    match (is_autoscaled, spec["replicas"].as_u64()) {
        (true, Some(_)) => problems.push("replicas cannot be set with autoscaling".to_string()),
        (false, None | Some(0)) => problems.push("replicas must be > 0".to_string()),
        (false, Some(1)) => problems.push("one replica is no fleet: at least 2".to_string()),
        _ => {}
    }
    for check in ["liveness", "readiness"] {
        if spec["checks"][check]["httpGet"]["path"] != "/healthz" {
            problems.push(format!("spec.checks.{check} is not GET /healthz"));
        }
    }
    let stores = spec["runtimeConfig"]["keyValueStores"].as_array();
    let default = stores
        .into_iter()
        .flatten()
        .find(|store| store["name"] == "default");
    match default {
        Some(store) if store["type"] == "redis" => {
            let url = store["options"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|option| option["name"] == "url");
            if url.is_none_or(|url| url["valueFrom"]["secretKeyRef"].is_null()) {
                problems.push("the Redis url must come from a Secret".to_string());
            }
        }
        _ => problems.push("the default key-value store is not Redis".to_string()),
    }
    problems
}

#[test]
fn every_spinapp_matches_the_crd_and_spin_operators_rules() {
    let (api_version, kind, schema) = spinapp_schema();
    for (build, objects) in builds() {
        let apps = of_kind(&objects, &kind);
        assert_eq!(apps.len(), 1, "{build}: one SpinApp");
        for app in apps {
            assert_eq!(app["apiVersion"], api_version.as_str(), "{build}");
            let errors = openapi::validate(&schema, app);
            assert!(errors.is_empty(), "{build}: {errors:#?}");
            let problems = spinapp_rules(app);
            assert!(problems.is_empty(), "{build}: {problems:#?}");
        }
    }
}

#[test]
fn a_broken_spinapp_is_refused() {
    let (_, _, schema) = spinapp_schema();
    let objects = kustomize::build(&kubernetes_dir().join("base"));
    let app = of_kind(&objects, "SpinApp")[0].clone();
    let broken = |change: &Breakage| {
        let mut app = app.clone();
        change(&mut app);
        let mut problems = openapi::validate(&schema, &app);
        problems.extend(spinapp_rules(&app));
        problems
    };
    let cases: &[(&str, &Breakage)] = &[
        (".spec: required field image is missing", &|app| {
            app["spec"].as_object_mut().unwrap().remove("image");
        }),
        (".spec.replicas: must be of type integer", &|app| {
            app["spec"]["replicas"] = "2".into();
        }),
        (
            ".spec.variables[0].valueFrom.secretKeyRef: required field key",
            &|app| {
                app["spec"]["variables"][0]["valueFrom"]["secretKeyRef"]
                    .as_object_mut()
                    .unwrap()
                    .remove("key");
            },
        ),
        (
            ".spec.checks.liveness.httpGet.port: unknown field",
            &|app| {
                app["spec"]["checks"]["liveness"]["httpGet"]["port"] = 80.into();
            },
        ),
        ("replicas cannot be set with autoscaling", &|app| {
            app["spec"]["enableAutoscaling"] = true.into();
        }),
        ("one replica is no fleet", &|app| {
            app["spec"]["replicas"] = 1.into();
        }),
    ];
    for (expected, change) in cases {
        let problems = broken(change);
        assert!(
            problems.iter().any(|problem| problem.starts_with(expected)),
            "expected {expected:?}, got {problems:#?}"
        );
    }
}

/// Problems of an object of a built-in kind, by its kind's required fields.
fn builtin_rules(value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut require = |is_ok: bool, what: &str| {
        if !is_ok {
            problems.push(what.to_string());
        }
    };
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    let is_dns_label = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    require(is_dns_label, "metadata.name must be a DNS label");
    let is_string_map = |map: &Value| {
        map.is_null()
            || map
                .as_object()
                .is_some_and(|map| map.values().all(Value::is_string))
    };
    match value["kind"].as_str().unwrap_or_default() {
        "ConfigMap" => {
            require(value["apiVersion"] == "v1", "apiVersion v1");
            require(is_string_map(&value["data"]), "data holds strings only");
        }
        "Secret" => {
            require(value["apiVersion"] == "v1", "apiVersion v1");
            require(value["type"].is_string(), "type");
            require(
                is_string_map(&value["data"]) && is_string_map(&value["stringData"]),
                "data holds strings only",
            );
        }
        "Ingress" => {
            require(
                value["apiVersion"] == "networking.k8s.io/v1",
                "apiVersion networking.k8s.io/v1",
            );
            let rules = value["spec"]["rules"].as_array();
            require(rules.is_some_and(|rules| !rules.is_empty()), "spec.rules");
            let tls_hosts: BTreeSet<&str> = value["spec"]["tls"]
                .as_array()
                .into_iter()
                .flatten()
                .inspect(|tls| {
                    if !tls["secretName"].is_string() {
                        problems.push("spec.tls[].secretName".to_string());
                    }
                })
                .flat_map(|tls| tls["hosts"].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            for rule in rules.into_iter().flatten() {
                let host = rule["host"].as_str().unwrap_or_default();
                if !tls_hosts.contains(host) {
                    problems.push(format!("host {host:?} is not served over TLS"));
                }
                let paths = rule["http"]["paths"].as_array();
                if paths.is_none_or(Vec::is_empty) {
                    problems.push(format!("{host}: http.paths"));
                }
                for path in paths.into_iter().flatten() {
                    let service = &path["backend"]["service"];
                    let is_ok = path["path"].as_str().is_some_and(|p| p.starts_with('/'))
                        && ["Exact", "Prefix", "ImplementationSpecific"]
                            .contains(&path["pathType"].as_str().unwrap_or_default())
                        && service["name"].is_string()
                        && (service["port"]["number"].is_u64()
                            || service["port"]["name"].is_string());
                    if !is_ok {
                        problems.push(format!(
                            "{host}: path, pathType, backend.service name and port"
                        ));
                    }
                }
            }
        }
        "HorizontalPodAutoscaler" => {
            require(
                value["apiVersion"] == "autoscaling/v2",
                "apiVersion autoscaling/v2",
            );
            let spec = &value["spec"];
            let target = &spec["scaleTargetRef"];
            require(
                target["apiVersion"].is_string()
                    && target["kind"].is_string()
                    && target["name"].is_string(),
                "spec.scaleTargetRef apiVersion, kind and name",
            );
            let max = spec["maxReplicas"].as_u64().unwrap_or(0);
            require(max >= 1, "spec.maxReplicas");
            let min = spec["minReplicas"].as_u64().unwrap_or(1);
            require(
                min >= 2 && min <= max,
                "2 <= spec.minReplicas <= spec.maxReplicas",
            );
            for metric in spec["metrics"].as_array().into_iter().flatten() {
                let kind = metric["type"].as_str().unwrap_or_default();
                let is_ok = match kind {
                    "Resource" => {
                        metric["resource"]["name"].is_string()
                            && metric["resource"]["target"]["type"].is_string()
                    }
                    _ => false,
                };
                if !is_ok {
                    problems.push(format!("metric of type {kind:?}: resource name and target"));
                }
            }
        }
        other => problems.push(format!("kind {other} is not checked by this test")),
    }
    problems
}

#[test]
fn every_other_object_has_its_kinds_required_fields() {
    for (build, objects) in builds() {
        for object in &objects {
            if object.value["kind"] == "SpinApp" {
                continue;
            }
            let problems = builtin_rules(&object.value);
            assert!(
                problems.is_empty(),
                "{build}: {} {} ({}): {problems:#?}",
                object.value["kind"],
                object.value["metadata"]["name"],
                object.source.display()
            );
        }
    }
}

#[test]
fn a_broken_object_is_refused() {
    let objects = kustomize::build(&kubernetes_dir().join("autoscaling"));
    let cases: &[(&str, &str, &Breakage, &str)] = &[
        (
            "Ingress",
            "scopegate",
            &|v| v["spec"]["tls"] = Value::Null,
            "is not served over TLS",
        ),
        (
            "Ingress",
            "scopegate",
            &|v| v["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Any".into(),
            "path, pathType",
        ),
        (
            "HorizontalPodAutoscaler",
            "scopegate",
            &|v| v["spec"]["minReplicas"] = 1.into(),
            "2 <= spec.minReplicas",
        ),
        (
            "ConfigMap",
            "scopegate-config",
            &|v| v["data"]["token_ttl"] = 300.into(),
            "data holds strings only",
        ),
        (
            "ConfigMap",
            "scopegate-config",
            &|v| v["metadata"]["name"] = "Scopegate".into(),
            "metadata.name",
        ),
    ];
    for (kind, name, change, expected) in cases {
        let mut value = named(&objects, kind, name).unwrap().clone();
        change(&mut value);
        let problems = builtin_rules(&value);
        assert!(
            problems.iter().any(|problem| problem.contains(expected)),
            "{kind} {name}: expected {expected:?}, got {problems:?}"
        );
    }
}

/// The keys an object of `kind` named `name` holds in the build.
fn keys_of(objects: &[Object], kind: &str, name: &str) -> BTreeSet<String> {
    let Some(value) = named(objects, kind, name) else {
        return BTreeSet::new();
    };
    ["data", "stringData"]
        .iter()
        .flat_map(|field| value[*field].as_object().into_iter().flatten())
        .map(|(key, _)| key.clone())
        .collect()
}

/// Problems of a `valueFrom`: it must name a key that the build holds.
fn reference_problems(objects: &[Object], what: &str, value_from: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (field, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
        let reference = &value_from[field];
        if reference.is_null() {
            continue;
        }
        let name = reference["name"].as_str().unwrap_or_default();
        let key = reference["key"].as_str().unwrap_or_default();
        if !keys_of(objects, kind, name).contains(key) {
            problems.push(format!("{what}: {kind} {name} has no key {key}"));
        }
    }
    problems
}

#[test]
fn the_variables_are_spin_tomls_and_every_reference_resolves() {
    let declared = spin_variables();
    for (build, objects) in builds() {
        let app = of_kind(&objects, "SpinApp")[0];
        let mut problems = Vec::new();
        let mut set = BTreeSet::new();
        for variable in app["spec"]["variables"].as_array().unwrap() {
            let name = variable["name"].as_str().unwrap();
            if !set.insert(name) {
                problems.push(format!("{name} is set twice"));
            }
            let Some((_, is_secret)) = declared.get(name) else {
                problems.push(format!("{name} is not a variable of spin.toml"));
                continue;
            };
            let value_from = &variable["valueFrom"];
            if variable["value"].is_null() == value_from.is_null() {
                problems.push(format!("{name}: exactly one of value and valueFrom"));
            }
            if *is_secret && value_from["secretKeyRef"].is_null() {
                problems.push(format!(
                    "{name} is secret in spin.toml: it must come from a Secret"
                ));
            }
            problems.extend(reference_problems(&objects, name, value_from));
        }
        for (name, (is_required, _)) in &declared {
            if *is_required && !set.contains(name.as_str()) {
                problems.push(format!("{name} is required by spin.toml and not set"));
            }
        }
        for store in app["spec"]["runtimeConfig"]["keyValueStores"]
            .as_array()
            .unwrap()
        {
            for option in store["options"].as_array().into_iter().flatten() {
                let what = format!("store {} option {}", store["name"], option["name"]);
                problems.extend(reference_problems(&objects, &what, &option["valueFrom"]));
            }
        }
        assert!(problems.is_empty(), "{build}: {problems:#?}");
    }
}

#[test]
fn a_variable_spin_toml_does_not_declare_is_caught() {
    let declared = spin_variables();
    assert!(declared.contains_key("signing_key") && declared["signing_key"] == (true, true));
    assert!(
        !declared.contains_key("signing-key"),
        "names are spin.toml's exactly"
    );
    let objects = kustomize::build(&kubernetes_dir().join("base"));
    let missing =
        serde_json::json!({"secretKeyRef": {"name": "scopegate-secrets", "key": "signing-key"}});
    assert_eq!(
        reference_problems(&objects, "x", &missing),
        ["x: Secret scopegate-secrets has no key signing-key"]
    );
}

#[test]
fn the_registry_trusts_what_scopegate_signs_and_both_are_behind_tls() {
    for (build, objects) in builds() {
        let app = of_kind(&objects, "SpinApp")[0];
        let app_name = app["metadata"]["name"].as_str().unwrap();
        let config = &named(&objects, "ConfigMap", "scopegate-config").unwrap()["data"];
        let registry = named(&objects, "ConfigMap", "registry-auth").unwrap();
        let registry: Value =
            serde_yaml::from_str(registry["data"]["config.yml"].as_str().unwrap()).unwrap();
        let token = &registry["auth"]["token"];
        assert_eq!(token["issuer"], config["issuer"], "{build}: issuer");
        let services: Vec<&str> = config["services"]
            .as_str()
            .unwrap()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .collect();
        assert!(
            services.contains(&token["service"].as_str().unwrap()),
            "{build}: the registry's service is one of scopegate's"
        );
        assert_eq!(
            token["realm"], config["realm"],
            "{build}: the realm clients are sent to"
        );
        let realm = token["realm"].as_str().unwrap();
        let host = realm
            .strip_prefix("https://")
            .and_then(|rest| rest.strip_suffix("/token"))
            .unwrap_or_else(|| panic!("{build}: realm {realm} is not https://HOST/token"));
        // The realm's host reaches the SpinApp's Service (spin-operator
        // names it after the app, port 80) through a TLS Ingress.
        let reaches_scopegate = of_kind(&objects, "Ingress").into_iter().any(|ingress| {
            ingress["spec"]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|rule| {
                    rule["host"] == host
                        && rule["http"]["paths"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|path| {
                                let service = &path["backend"]["service"];
                                service["name"] == app_name && service["port"]["number"] == 80
                            })
                })
        });
        assert!(
            reaches_scopegate,
            "{build}: {host} does not reach {app_name}:80"
        );
        // The bundle is the certificate scopegate signs with.
        let signing_cert = app["spec"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|variable| variable["name"] == "signing_cert")
            .unwrap();
        let reference = &signing_cert["valueFrom"]["configMapKeyRef"];
        let bundle = token["rootcertbundle"].as_str().unwrap();
        assert!(
            bundle.ends_with(&format!("/{}", reference["key"].as_str().unwrap())),
            "{build}: rootcertbundle {bundle} is not the mounted {reference}"
        );
        for hpa in of_kind(&objects, "HorizontalPodAutoscaler") {
            assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
            assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], app_name, "{build}");
            assert_eq!(app["spec"]["enableAutoscaling"], true, "{build}");
        }
    }
}

#[test]
fn every_manifest_is_applied_by_a_kustomization_and_local_files_stay_out_of_git() {
    let root = kubernetes_dir();
    let mut applied: BTreeSet<PathBuf> = BTreeSet::new();
    for (_, objects) in builds() {
        applied.extend(objects.iter().map(|object| object.source.clone()));
    }
    for build in BUILDS {
        let dir = root.join(build);
        let kustomization = &kustomize::documents(&dir.join("kustomization.yaml"))[0];
        for patch in kustomization["patches"].as_array().into_iter().flatten() {
            applied.insert(dir.join(patch["path"].as_str().unwrap()));
        }
        for field in ["secretGenerator", "configMapGenerator"] {
            for generator in kustomization[field].as_array().into_iter().flatten() {
                for file in generator["files"].as_array().unwrap() {
                    let (_, source) = file.as_str().unwrap().split_once('=').unwrap();
                    assert!(
                        source.starts_with("local/"),
                        "{build}: {source}: a deployment's own files live in local/"
                    );
                }
            }
        }
    }
    let ignored = std::fs::read_to_string(root.join("base/.gitignore")).unwrap();
    assert!(
        ignored.lines().any(|line| line == "local/"),
        "git ignores local/"
    );
    let mut manifests = Vec::new();
    for build in BUILDS {
        for entry in std::fs::read_dir(root.join(build)).unwrap() {
            let path = entry.unwrap().path();
            let is_yaml = path.extension().is_some_and(|ext| ext == "yaml");
            if is_yaml && path.file_name().unwrap() != "kustomization.yaml" {
                manifests.push(path);
            }
        }
    }
    for path in manifests {
        assert!(
            applied.contains(&path),
            "{} is applied by no kustomization",
            path.display()
        );
    }
}

/// The paths an Ingress of `objects` sends to `service`, with their types.
fn routed_paths(objects: &[Object], service: &str) -> BTreeSet<(String, String)> {
    of_kind(objects, "Ingress")
        .into_iter()
        .flat_map(|ingress| ingress["spec"]["rules"].as_array().unwrap().iter())
        .flat_map(|rule| rule["http"]["paths"].as_array().unwrap().iter())
        .filter(|path| path["backend"]["service"]["name"] == service)
        .map(|path| {
            (
                path["path"].as_str().unwrap().to_string(),
                path["pathType"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// spin.toml's routes that clients and registries use: every route but
/// the admin API and the health check.
fn public_routes() -> BTreeSet<(String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("spin.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trigger| trigger["route"].as_str().unwrap().to_string())
        .filter(|route| !route.starts_with("/admin/") && route != "/healthz")
        .map(|route| (route, "Exact".to_string()))
        .collect()
}

#[test]
fn the_ingress_exposes_the_token_routes_and_never_the_admin_api() {
    let wanted = public_routes();
    assert!(wanted.contains(&("/token".to_string(), "Exact".to_string())));
    for (build, objects) in builds() {
        assert_eq!(routed_paths(&objects, "scopegate"), wanted, "{build}");
    }
    // A catch-all route would expose /admin/: the comparison refuses it.
    let mut objects = kustomize::build(&kubernetes_dir().join("base"));
    for object in &mut objects {
        if object.value["kind"] == "Ingress" && object.value["metadata"]["name"] == "scopegate" {
            let paths = &mut object.value["spec"]["rules"][0]["http"]["paths"];
            let mut catch_all = paths[0].clone();
            catch_all["path"] = "/".into();
            catch_all["pathType"] = "Prefix".into();
            paths.as_array_mut().unwrap().push(catch_all);
        }
    }
    assert_ne!(routed_paths(&objects, "scopegate"), wanted);
}
