//! `cargo test -p module-graph`: no crate of the workspace has an import cycle between its
//! modules. Prints every crate's graph, so the command also shows what uses what.

use std::path::Path;

#[test]
fn no_crate_has_an_import_cycle() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let crates = module_graph::workspace_crates(&workspace).expect("reading the workspace");
    assert!(crates.len() >= 8, "found only {} crate roots: the workspace reader is broken", crates.len());
    let mut failures = Vec::new();
    for krate in &crates {
        let graph = module_graph::Graph::of_crate(&krate.root).unwrap_or_else(|e| panic!("{}: {e}", krate.name));
        eprintln!("{} ({} modules, {} edges)", krate.name, graph.modules.len(), graph.edge_count());
        for cycle in graph.cycles() {
            failures.push(format!("{}: {}", krate.name, graph.describe_cycle(&cycle)));
        }
    }
    assert!(failures.is_empty(), "import cycles:\n{}", failures.join("\n"));
}

#[test]
fn a_cycle_is_found() {
    let dir = std::env::temp_dir().join(format!("module-graph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plan")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod config; mod rules; mod plan; mod clean;\n").unwrap();
    std::fs::write(dir.join("config.rs"), "use crate::rules::Rule; // crate::plan in a comment\n").unwrap();
    std::fs::write(dir.join("rules.rs"), "pub struct Rule; fn f() { let _ = crate::config::read(); let s = \"crate::clean\"; }\n").unwrap();
    std::fs::write(dir.join("plan/mod.rs"), "mod call;\npub use call::plan_call;\npub struct Step;\n").unwrap();
    std::fs::write(dir.join("plan/call.rs"), "use super::Step;\n").unwrap();
    std::fs::write(dir.join("clean.rs"), "use crate::{config, plan::{Step}};\nmod inner { use super::super::rules::Rule; }\n").unwrap();
    let graph = module_graph::Graph::of_crate(&dir.join("lib.rs")).unwrap();
    let mut cycles: Vec<String> = graph.cycles().iter().map(|c| graph.describe_cycle(c)).collect();
    cycles.sort();
    assert_eq!(cycles, ["config → rules → config", "plan → plan::call → plan"]);
    assert!(graph.edges_from("clean").contains(&"config".to_string()));
    assert!(graph.edges_from("clean").contains(&"plan".to_string()));
    assert_eq!(graph.edges_from("clean::inner"), ["rules"]);
    let _ = std::fs::remove_dir_all(&dir);
}
