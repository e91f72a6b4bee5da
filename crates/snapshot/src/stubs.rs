//! Stub modules for every non-WASI module a wasm module imports functions
//! from: each exports those functions with their own types, and each body
//! traps. Wizer needs every import satisfied to instantiate the module; the
//! initialisation function never calls them (if it did, Wizer would fail
//! with the trap, and the build with it).

use std::collections::BTreeMap;
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, Module,
    TypeSection, ValType,
};
use wasmparser::{Parser, Payload, TypeRef};

/// The WASI module Wizer provides itself with `--allow-wasi`.
const WASI: &str = "wasi_snapshot_preview1";

/// (module name, stub module bytes) for every imported module but WASI.
pub fn for_imports(module: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut types = Vec::new();
    let mut imports: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| format!("not a wasm module: {e}"))? {
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => return Err("a component, not a core module (build for wasm32-wasip1)".into()),
            Payload::TypeSection(reader) => {
                for group in reader.into_iter_err_on_gc_types() {
                    types.push(group.map_err(|e| format!("type section: {e}"))?);
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| format!("import section: {e}"))?;
                    if import.module == WASI {
                        continue;
                    }
                    let TypeRef::Func(index) = import.ty else {
                        return Err(format!(
                            "{}::{} is not a function: no stub for it",
                            import.module, import.name
                        ));
                    };
                    imports
                        .entry(import.module.to_string())
                        .or_default()
                        .push((import.name.to_string(), index));
                }
            }
            _ => {}
        }
    }
    imports
        .into_iter()
        .map(|(name, functions)| Ok((name, stub(&types, &functions)?)))
        .collect()
}

fn stub(types: &[wasmparser::FuncType], functions: &[(String, u32)]) -> Result<Vec<u8>, String> {
    let mut type_section = TypeSection::new();
    let mut function_section = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    for (index, (name, type_index)) in functions.iter().enumerate() {
        let ty = types
            .get(*type_index as usize)
            .ok_or_else(|| format!("{name}: no type {type_index}"))?;
        let params: Vec<ValType> = ty.params().iter().map(val_type).collect::<Result<_, _>>()?;
        let results: Vec<ValType> = ty
            .results()
            .iter()
            .map(val_type)
            .collect::<Result<_, _>>()?;
        type_section.ty().function(params, results);
        let index = u32::try_from(index).map_err(|_| "too many imports".to_string())?;
        function_section.function(index);
        exports.export(name, ExportKind::Func, index);
        let mut body = Function::new([]);
        body.instruction(&Instruction::Unreachable);
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = Module::new();
    module
        .section(&type_section)
        .section(&function_section)
        .section(&exports)
        .section(&code);
    Ok(module.finish())
}

fn val_type(ty: &wasmparser::ValType) -> Result<ValType, String> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(_) => return Err("reference-typed import: no stub for it".into()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    fn module_importing(imports: &[(&str, &str, &[ValType], &[ValType])]) -> Vec<u8> {
        let mut types = TypeSection::new();
        let mut section = wasm_encoder::ImportSection::new();
        for (index, (module, name, params, results)) in imports.iter().enumerate() {
            types.ty().function(params.to_vec(), results.to_vec());
            section.import(
                module,
                name,
                wasm_encoder::EntityType::Function(u32::try_from(index).unwrap()),
            );
        }
        let mut module = Module::new();
        module.section(&types).section(&section);
        module.finish()
    }

    #[test]
    fn one_valid_stub_per_module_but_wasi() {
        let module = module_importing(&[
            (
                "wasi_snapshot_preview1",
                "fd_write",
                &[ValType::I32; 4],
                &[ValType::I32],
            ),
            ("spin:kv", "get", &[ValType::I32, ValType::I64], &[]),
            ("spin:kv", "set", &[], &[ValType::I32]),
            ("wasi:http/types", "drop", &[ValType::I32], &[]),
        ]);
        let stubs = for_imports(&module).unwrap();
        let names: Vec<&str> = stubs.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["spin:kv", "wasi:http/types"]);
        for (_, bytes) in &stubs {
            wasmparser::validate(bytes).unwrap();
        }
        let exports: Vec<String> = Parser::new(0)
            .parse_all(&stubs[0].1)
            .filter_map(|payload| match payload.unwrap() {
                Payload::ExportSection(reader) => Some(
                    reader
                        .into_iter()
                        .map(|e| e.unwrap().name.to_string())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(exports, ["get", "set"]);
    }

    #[test]
    fn refuses_components_and_garbage() {
        assert!(for_imports(b"not wasm").is_err());
        // The preamble of an empty component: magic, version 0x0d, layer 1.
        let component = b"\0asm\x0d\0\x01\0";
        assert!(for_imports(component).unwrap_err().contains("component"));
    }
}
