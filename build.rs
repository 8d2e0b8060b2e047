//! Compiles `spec/dashscope.yaml` into a typed client (`OUT_DIR/codegen.rs`, included by
//! `src/api.rs`). The generated code is never checked in; `tests/codegen.rs` snapshots it so
//! every spec change is a reviewable diff.

use std::path::Path;

const SPEC: &str = "spec/dashscope.yaml";

fn main() {
    // The whole directory: a spec split into several files later still triggers a rebuild.
    println!("cargo::rerun-if-changed=spec");
    println!("cargo::rerun-if-changed=build.rs");
    if let Err(message) = generate() {
        // `cargo::error` fails the build with this message alone, not a backtrace.
        for line in message.lines() {
            println!("cargo::error={line}");
        }
    }
}

fn generate() -> Result<(), String> {
    let text = std::fs::read_to_string(SPEC).map_err(|e| format!("{SPEC}: cannot read: {e}"))?;
    let spec: openapiv3::OpenAPI = serde_yaml::from_str(&text)
        .map_err(|e| format!("{SPEC}: not a valid OpenAPI 3.0 document: {e}"))?;

    let mut settings = progenitor::GenerationSettings::new();
    settings
        // Every operation gets a request builder and every type a builder: an optional field
        // added to the spec is a new setter, never a broken struct literal in a user's code.
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Merged)
        // Users publish or validate the request shapes with `schemars::schema_for!`.
        .with_derive("schemars::JsonSchema")
        // Our `ClientHooks` impl (src/client.rs) authenticates, strips `api-version` and maps
        // errors; forgetting it must be a compile error, not a silently unauthenticated client.
        .with_hooks(progenitor::HooksMode::Expected)
        .with_inner_type(quote_path("crate::session::Inner"))
        // Secrets get a type whose Debug is redacted; the derived Debug of generated structs
        // would otherwise print the policy signature and access key id.
        .with_replacement("SecretString", "crate::Secret", std::iter::empty());
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| format!("{SPEC}: progenitor cannot generate a client: {e}"))?;
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("{SPEC}: generated code does not parse: {e}"))?;
    let mut code = default_extra_maps(prettyplease::unparse(&file))?;
    code.push_str(&operation_tables(&spec)?);

    let out_dir = std::env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?;
    let out = Path::new(&out_dir).join("codegen.rs");
    std::fs::write(&out, code).map_err(|e| format!("{}: cannot write: {e}", out.display()))
}

/// typify's builders treat a flattened `additionalProperties` map (our `extra`) as a required
/// field, so every builder would fail without `.extra(…)`. The map is optional on the wire
/// (`#[serde(flatten)]` of an empty map writes nothing): its builder default becomes empty.
fn default_extra_maps(code: String) -> Result<String, String> {
    const REQUIRED: &str = r#"extra: Err("no value supplied for extra".to_string()),"#;
    const DEFAULT: &str = "extra: Ok(Default::default()),";
    if !code.contains(REQUIRED) && code.contains("pub extra:") {
        return Err(format!(
            "{SPEC}: the generated builders no longer look as build.rs expects (no `{REQUIRED}`): \
             check `default_extra_maps` against this progenitor version"
        ));
    }
    Ok(code.replace(REQUIRED, DEFAULT))
}

/// The operation ids that carry each of our extensions, as constants the client's hooks read:
/// what an operation needs beyond the spec's shapes is said in the spec, next to it.
/// `x-dashscope-async: true`: a task submit (the async header; never resent once it may have
/// arrived). `x-dashscope-task-query: true`: an endpoint under the 20-per-second task limit.
fn operation_tables(spec: &openapiv3::OpenAPI) -> Result<String, String> {
    let mut tables = String::new();
    for (extension, name, doc) in [
        (
            "x-dashscope-async",
            "ASYNC_OPERATIONS",
            "Task submits (`x-dashscope-async` in the spec).",
        ),
        (
            "x-dashscope-task-query",
            "TASK_QUERY_OPERATIONS",
            "Task queries, cancels and lists (`x-dashscope-task-query` in the spec).",
        ),
    ] {
        let mut ids: Vec<&str> = Vec::new();
        for (path, method, op) in spec.operations() {
            match op.extensions.get(extension) {
                None | Some(serde_json::Value::Bool(false)) => {}
                Some(serde_json::Value::Bool(true)) => {
                    ids.extend(op.operation_id.as_deref());
                }
                Some(other) => {
                    return Err(format!(
                        "{SPEC}: {method} {path}: {extension} must be true or false, not {other}"
                    ));
                }
            }
        }
        ids.sort_unstable();
        tables.push_str(&format!(
            "\n/// {doc}\npub const {name}: &[&str] = &{ids:?};\n"
        ));
    }
    // `x-dashscope-answer-limit: N`: the most bytes a success answer of the operation may have
    // (read within the call's deadline; more is an error). Unmarked operations get the default.
    let mut limits: Vec<(String, u64)> = Vec::new();
    for (path, method, op) in spec.operations() {
        match op.extensions.get("x-dashscope-answer-limit") {
            None => {}
            Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
                if let (Some(id), Some(n)) = (&op.operation_id, n.as_u64()) {
                    limits.push((id.clone(), n));
                }
            }
            Some(other) => {
                return Err(format!(
                    "{SPEC}: {method} {path}: x-dashscope-answer-limit must be a positive byte count, not {other}"
                ));
            }
        }
    }
    limits.sort();
    let rows = limits
        .iter()
        .map(|(id, n)| format!("({id:?}, {n})"))
        .collect::<Vec<_>>()
        .join(", ");
    tables.push_str(&format!(
        "\n/// Answer limits in bytes (`x-dashscope-answer-limit` in the spec).\npub const ANSWER_LIMITS: &[(&str, usize)] = &[{rows}];\n"
    ));
    Ok(tables)
}

fn quote_path(path: &str) -> proc_macro2::TokenStream {
    path.parse().unwrap_or_default()
}
