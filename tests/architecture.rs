//! No import circle in any crate of the workspace: the library (with the code `build.rs`
//! generates into `api`), the emulator and the CLI. Read from the sources.
//!
//! A node is a module: a top-level file (`client`), a folder module (`upload`, its `mod.rs`)
//! and each file inside it (`upload::attempt`). An edge is a path that names another module:
//! `crate::x::…` (the deepest module it names), `super::y` (a sibling file, or the parent),
//! a name imported from the crate root (resolved through the root's `pub use` lines). A
//! module naming one of its own ancestors (a child using its folder's items) is not counted;
//! every other edge is (parent to child, sibling to sibling, across folders), so a circle that
//! runs through a folder's `mod.rs` and its re-exports is seen.
//! Comments and test modules (and `*tests.rs` files) are left out; a glob import of the parent (`use super::*`)
//! outside tests is refused, since it would hide the sibling edges behind it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// (module path, source text) of every file of a crate's `src/`.
fn modules(src: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            panic!("cannot read {}", dir.display());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "snapshots" {
                    walk(&path, &join(prefix, &name), out);
                }
            } else if let Some(stem) = name.strip_suffix(".rs")
                && !stem.ends_with("tests")
            {
                let module = match stem {
                    "mod" => prefix.to_owned(),
                    "lib" | "main" if prefix.is_empty() => "crate".to_owned(),
                    _ => join(prefix, stem),
                };
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((module, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, "", &mut out);
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}::{name}")
    }
}

/// The text without comments and without `#[cfg(test)]` modules.
fn code_only(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: up to the line that closes it at this depth.
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if opened && depth <= 0 || !opened && l.trim_end().ends_with(';') {
                    break;
                }
            }
            continue;
        }
        if !line.trim_start().starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Root names (`Client`, `Error`, …) and the module each is re-exported from.
fn root_exports(root: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in root.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim_end_matches(';').trim_matches(['{', '}']);
        for item in items.split(',') {
            let item = item.trim().rsplit("::").next().unwrap_or_default();
            if !item.is_empty() {
                names.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    names
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The deepest known module named by `segments` below `base`.
fn deepest(base: &str, segments: &[&str], known: &BTreeSet<String>) -> Option<String> {
    let mut found = None;
    let mut path = base.to_owned();
    for segment in segments {
        path = join(&path, segment);
        if known.contains(&path) {
            found = Some(path.clone());
        } else {
            break;
        }
    }
    found
}

/// The modules a file's code names.
fn edges(
    module: &str,
    text: &str,
    known: &BTreeSet<String>,
    exports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p).to_owned();
    let mut found = BTreeSet::new();
    for (anchor, base) in [("crate::", String::new()), ("super::", parent.clone())] {
        for (i, _) in text.match_indices(anchor) {
            if i > 0 && text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let after = &text[i + anchor.len()..];
            let groups: Vec<String> = if let Some(group) = after.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or_default();
                group.split(',').map(|g| g.trim().to_owned()).collect()
            } else {
                let path: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '*')
                    .collect();
                vec![path]
            };
            for path in groups {
                let segments: Vec<&str> = path.split("::").map(ident).collect();
                if anchor == "super::" && segments.first() == Some(&"") && path.starts_with('*') {
                    panic!("{module}: `use super::*` hides its sibling edges; import by name");
                }
                if let Some(m) = deepest(&base, &segments, known) {
                    found.insert(m);
                } else if let Some(first) = segments.first() {
                    if base.is_empty() {
                        if let Some(m) = exports.get(*first) {
                            found.insert(m.clone());
                        } else {
                            found.insert("crate".to_owned());
                        }
                    } else {
                        // An item of the parent's own file.
                        found.insert(base.clone());
                    }
                }
            }
        }
    }
    // A folder's own children by their relative paths (`mod g; pub use g::G;`, `self::g::…`).
    let prefix = if module == "crate" {
        String::new()
    } else {
        format!("{module}::")
    };
    for child in known {
        let Some(name) = child.strip_prefix(&prefix) else {
            continue;
        };
        if name.contains("::") || child == module {
            continue;
        }
        let needle = format!("{name}::");
        let named = text.match_indices(&needle).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                || text[..i].ends_with("self::")
        });
        if named {
            found.insert(child.clone());
        }
    }
    found.remove(module);
    // A child may name its ancestors' items (a folder's `mod.rs`, the crate root): those edges
    // are not counted, or every folder would be a circle with its own parts. A parent's edges to
    // its children are, so that a circle that passes through a folder is seen.
    found.retain(|m| m != "crate" && !module.starts_with(&format!("{m}::")));
    found
}

fn graph_of(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let root = files
        .iter()
        .find(|(m, _)| m == "crate")
        .map(|(_, t)| t.as_str())
        .unwrap_or_default();
    let exports = root_exports(root);
    let mut graph = BTreeMap::new();
    for (module, text) in files {
        let to = edges(module, &code_only(text), &known, &exports);
        graph
            .entry(module.clone())
            .or_insert_with(BTreeSet::new)
            .extend(to);
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

fn assert_acyclic(name: &str, graph: &BTreeMap<String, BTreeSet<String>>, expect: &[(&str, &str)]) {
    // The graph is what was read, not nothing.
    for (from, to) in expect {
        assert!(
            graph.get(*from).is_some_and(|t| t.contains(*to)),
            "{name}: expected {from} -> {to} in {graph:#?}"
        );
    }
    if let Some(cycle) = find_cycle(graph) {
        panic!("{name}: import cycle {}\n{graph:#?}", cycle.join(" -> "));
    }
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_library_has_no_import_cycle_generated_code_included() {
    let mut files = modules(&workspace().join("src"));
    // The generated client is part of `api`: it names its inner type and the key's type.
    let generated = include_str!(concat!(env!("OUT_DIR"), "/codegen.rs"));
    let api = files
        .iter_mut()
        .find(|(m, _)| m == "api")
        .expect("src/api.rs");
    // Its `super::` paths lead between its own nested modules (`types`, `builder`), inside
    // `api`: only its `crate::` paths leave it.
    api.1
        .push_str(&generated.replace("super::", "nested_super_"));
    let graph = graph_of(&files);
    assert_acyclic(
        "dashscope-oss",
        &graph,
        &[
            ("api", "session"),
            ("client", "api"),
            ("client", "transport"),
            ("chat", "client"),
            ("upload::credential", "api"),
            ("upload::attempt", "upload::form"),
        ],
    );
}

#[test]
fn the_emulator_has_no_import_cycle() {
    let graph = graph_of(&modules(&workspace().join("emulator/src")));
    assert_acyclic("dashscope-emulator", &graph, &[("oss", "state")]);
}

#[test]
fn the_cli_has_no_import_cycle() {
    let graph = graph_of(&modules(&workspace().join("cli/src")));
    assert_acyclic("dashscope-cli", &graph, &[]);
}

#[test]
fn the_reader_sees_edges_and_cycles() {
    let files = vec![
        (
            "crate".to_owned(),
            "mod a;\nmod b;\npub use a::A;\n".to_owned(),
        ),
        ("a".to_owned(), "use crate::b::B;\n".to_owned()),
        (
            "b".to_owned(),
            "use super::A;\nuse crate::b::c::C;\n// use crate::z;\n".to_owned(),
        ),
        ("b::c".to_owned(), "use super::d::D;\n".to_owned()),
        ("b::d".to_owned(), "use super::c::C;\n".to_owned()),
    ];
    let graph = graph_of(&files);
    assert_eq!(graph["a"], BTreeSet::from(["b".to_owned()]));
    // `super::A` from b is the root's A, which is a's; b names its own child c; comments are
    // not code.
    assert_eq!(
        graph["b"],
        BTreeSet::from(["a".to_owned(), "b::c".to_owned()])
    );
    assert_eq!(graph["b::c"], BTreeSet::from(["b::d".to_owned()]));
    let cycle = find_cycle(&graph).expect("a cycle");
    assert!(cycle.len() >= 3, "{cycle:?}");

    // A circle through a folder: f's mod.rs re-exports f::g's item, f::g uses h, and h uses
    // the item by its re-exported path.
    let files = vec![
        ("crate".to_owned(), "mod f;\nmod h;\n".to_owned()),
        ("f".to_owned(), "mod g;\npub use g::G;\n".to_owned()),
        ("f::g".to_owned(), "use crate::h::H;\n".to_owned()),
        ("h".to_owned(), "use crate::f::G;\n".to_owned()),
    ];
    let graph = graph_of(&files);
    assert!(find_cycle(&graph).is_some(), "{graph:#?}");
}
