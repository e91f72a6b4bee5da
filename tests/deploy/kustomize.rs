//! What `kubectl apply -k DIR` would send, for the kustomization features
//! deploy/kubernetes/ uses: `resources` (files and directories), `namespace`,
//! `secretGenerator` / `configMapGenerator` from `files` (with
//! `disableNameSuffixHash`), and JSON 6902 `patches` (`add`, `replace`,
//! `remove`) with a `target`. Any other field of a kustomization is an error,
//! so a feature this reader does not apply can never be silently skipped.
//! Generated objects carry their keys with empty values: the files they
//! come from are the deployment's own and not in git.

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// One object of the build, with the file it came from.
pub struct Object {
    pub source: PathBuf,
    pub value: Value,
}

const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "secretGenerator",
    "configMapGenerator",
    "generatorOptions",
    "patches",
];

/// Every YAML document of `path`, as JSON values.
pub fn documents(path: &Path) -> Vec<Value> {
    use serde::Deserialize as _;
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .filter(|value| !value.is_null())
        .collect()
}

/// The objects `kubectl apply -k dir` would apply.
pub fn build(dir: &Path) -> Vec<Object> {
    let file = dir.join("kustomization.yaml");
    let [kustomization] = &documents(&file)[..] else {
        panic!("{}: one document expected", file.display());
    };
    let object = kustomization.as_object().expect("a kustomization is a map");
    for key in object.keys() {
        assert!(
            FIELDS.contains(&key.as_str()),
            "{}: {key} is not a kustomization field this test applies",
            file.display()
        );
    }
    assert_eq!(kustomization["kind"], "Kustomization", "{}", file.display());
    let mut objects = Vec::new();
    for resource in strings(&kustomization["resources"]) {
        let path = dir.join(resource);
        if path.is_dir() {
            objects.extend(build(&path));
        } else {
            objects.extend(documents(&path).into_iter().map(|value| Object {
                source: path.clone(),
                value,
            }));
        }
    }
    let is_hashless = kustomization["generatorOptions"]["disableNameSuffixHash"] == true;
    for (field, kind) in [
        ("secretGenerator", "Secret"),
        ("configMapGenerator", "ConfigMap"),
    ] {
        for generator in kustomization[field].as_array().into_iter().flatten() {
            assert!(
                is_hashless,
                "{}: generated names get a hash suffix that SpinApp references would not follow",
                file.display()
            );
            let mut data = Map::new();
            for entry in strings(&generator["files"]) {
                let (key, source) = entry.split_once('=').unwrap_or_else(|| {
                    panic!("{}: generator file {entry} names no key", file.display())
                });
                data.insert(key.to_string(), json!(source));
            }
            objects.push(Object {
                source: file.clone(),
                value: json!({
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"name": generator["name"]},
                    "type": if kind == "Secret" { json!("Opaque") } else { Value::Null },
                    "data": data,
                }),
            });
        }
    }
    for patch in kustomization["patches"].as_array().into_iter().flatten() {
        let path = dir.join(patch["path"].as_str().expect("a patch names its file"));
        let [operations] = &documents(&path)[..] else {
            panic!("{}: one document expected", path.display());
        };
        let target = &patch["target"];
        let mut matched = 0;
        for object in &mut objects {
            if is_target(target, &object.value) {
                apply(&mut object.value, operations, &path);
                matched += 1;
            }
        }
        assert_eq!(matched, 1, "{}: patches {matched} objects", path.display());
    }
    if let Some(namespace) = kustomization["namespace"].as_str() {
        for object in &mut objects {
            object.value["metadata"]["namespace"] = json!(namespace);
        }
    }
    objects
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item.as_str().expect("a list of strings"))
        .collect()
}

fn is_target(target: &Value, object: &Value) -> bool {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    [
        ("group", group),
        ("version", version),
        ("kind", object["kind"].as_str().unwrap_or_default()),
        (
            "name",
            object["metadata"]["name"].as_str().unwrap_or_default(),
        ),
    ]
    .into_iter()
    .all(|(field, actual)| target[field].as_str().is_none_or(|wanted| wanted == actual))
}

/// Applies JSON 6902 operations with object-member paths.
fn apply(object: &mut Value, operations: &Value, file: &Path) {
    for operation in operations.as_array().expect("a JSON 6902 patch is a list") {
        let path = operation["path"].as_str().expect("an operation has a path");
        let (parent, last) = path.rsplit_once('/').expect("a path starts with /");
        let parent = object
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{}: {parent} does not exist", file.display()));
        let parent = parent
            .as_object_mut()
            .unwrap_or_else(|| panic!("{}: {path}: not a member of a map", file.display()));
        match operation["op"].as_str() {
            Some("add") => {
                parent.insert(last.to_string(), operation["value"].clone());
            }
            Some("replace") => {
                assert!(
                    parent.contains_key(last),
                    "{}: replace of absent {path}",
                    file.display()
                );
                parent.insert(last.to_string(), operation["value"].clone());
            }
            Some("remove") => {
                assert!(
                    parent.remove(last).is_some(),
                    "{}: remove of absent {path}",
                    file.display()
                );
            }
            other => panic!(
                "{}: operation {other:?} is not applied here",
                file.display()
            ),
        }
    }
}
