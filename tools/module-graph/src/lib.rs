//! The module graph of a Rust crate, read from its source, and the import cycles in it.
//!
//! A node is a module: a file (`a.rs`, `a/mod.rs`) or an inline `mod a { … }`. There is an
//! edge from A to B when A names B: `use crate::b…`, `crate::b::x` in code, `super::b`,
//! `self::b`, or a child module's name (`b::x`) in its parent; a `pub use` re-export counts
//! too, since the re-exporting module then depends on what it re-exports. Comments and string
//! literals are skipped. `mod b;` alone only declares B: it is not an edge.
//!
//! Written by hand because no maintained crate answers "which module uses which" from source
//! without compiling it (`cargo-modules` needs rust-analyzer's whole toolchain); this reader is
//! a tokenizer and a use-tree parser, about 300 lines, tested on a crate it builds itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate of the workspace: a root file (`src/lib.rs`, `src/main.rs`, `build.rs`, a test).
#[derive(Debug, Clone)]
pub struct CrateRoot {
    /// The member folder and root file, e.g. `plugin/src/lib.rs`.
    pub name: String,
    pub root: PathBuf,
}

/// Every crate root of the workspace whose `Cargo.toml` is at `workspace`.
pub fn workspace_crates(workspace: &Path) -> std::io::Result<Vec<CrateRoot>> {
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml"))?;
    let members = manifest
        .split("members")
        .nth(1)
        .and_then(|rest| rest.split_once('[').map(|(_, r)| r))
        .and_then(|rest| rest.split_once(']').map(|(list, _)| list))
        .unwrap_or_default();
    let mut crates = Vec::new();
    for member in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()) {
        let dir = workspace.join(member);
        let mut roots = vec![dir.join("src/lib.rs"), dir.join("src/main.rs"), dir.join("build.rs")];
        for sub in ["tests", "src/bin", "benches"] {
            if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
                let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "rs")).collect();
                files.sort();
                roots.extend(files);
            }
        }
        for root in roots.into_iter().filter(|r| r.is_file()) {
            let name = format!("{member}/{}", root.strip_prefix(&dir).unwrap_or(&root).display());
            crates.push(CrateRoot { name, root });
        }
    }
    Ok(crates)
}

/// A crate's modules and the edges between them. Modules are named by path from the crate
/// root (`plan::call`); the root itself is `crate`.
#[derive(Debug, Default)]
pub struct Graph {
    pub modules: BTreeSet<String>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Reads the crate whose root file is `root`, following its `mod` declarations.
    pub fn of_crate(root: &Path) -> Result<Graph, String> {
        let mut files = Vec::new();
        load(root, Vec::new(), true, &mut files)?;
        let mut graph = Graph::default();
        for file in &files {
            for scope in &file.scopes {
                graph.modules.insert(name_of(&scope.module));
            }
        }
        for file in &files {
            for (from, path) in paths_named(file) {
                if let Some(to) = graph.resolve(&from, &path) {
                    if to != from {
                        graph.edges.entry(name_of(&from)).or_default().insert(name_of(&to));
                    }
                }
            }
        }
        Ok(graph)
    }

    pub fn edge_count(&self) -> usize {
        self.edges.values().map(BTreeSet::len).sum()
    }

    /// The modules `module` names, sorted.
    pub fn edges_from(&self, module: &str) -> Vec<String> {
        self.edges.get(module).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// The module that a path names from `from`: the longest prefix of it that is a module.
    fn resolve(&self, from: &[String], path: &[String]) -> Option<Vec<String>> {
        let mut at: Vec<String>;
        let mut rest = path;
        match path.first().map(String::as_str) {
            Some("crate") => {
                at = Vec::new();
                rest = &path[1..];
            }
            Some("self") | Some("super") => {
                at = from.to_vec();
                while let Some(step) = rest.first().map(String::as_str) {
                    match step {
                        "self" => {}
                        "super" => {
                            at.pop()?;
                        }
                        _ => break,
                    }
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                let mut child = from.to_vec();
                child.push(first.to_string());
                if !self.modules.contains(&name_of(&child)) {
                    return None;
                }
                at = child;
                rest = &path[1..];
            }
            None => return None,
        }
        for segment in rest {
            let mut deeper = at.clone();
            deeper.push(segment.clone());
            if !self.modules.contains(&name_of(&deeper)) {
                break;
            }
            at = deeper;
        }
        Some(at)
    }

    /// Every strongly connected component of more than one module (Tarjan's algorithm).
    pub fn cycles(&self) -> Vec<Vec<String>> {
        struct Tarjan<'g> {
            graph: &'g Graph,
            index: BTreeMap<String, usize>,
            low: BTreeMap<String, usize>,
            stack: Vec<String>,
            on_stack: BTreeSet<String>,
            components: Vec<Vec<String>>,
        }
        impl Tarjan<'_> {
            fn visit(&mut self, v: &str) {
                let i = self.index.len();
                self.index.insert(v.to_string(), i);
                self.low.insert(v.to_string(), i);
                self.stack.push(v.to_string());
                self.on_stack.insert(v.to_string());
                for w in self.graph.edges_from(v) {
                    if !self.index.contains_key(&w) {
                        self.visit(&w);
                        let low = self.low[v].min(self.low[&w]);
                        self.low.insert(v.to_string(), low);
                    } else if self.on_stack.contains(&w) {
                        let low = self.low[v].min(self.index[&w]);
                        self.low.insert(v.to_string(), low);
                    }
                }
                if self.low[v] == self.index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack.remove(&w);
                        let done = w == v;
                        component.push(w);
                        if done {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort();
                        self.components.push(component);
                    }
                }
            }
        }
        let mut t = Tarjan { graph: self, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on_stack: BTreeSet::new(), components: Vec::new() };
        for m in &self.modules {
            if !t.index.contains_key(m) {
                t.visit(m);
            }
        }
        t.components
    }

    /// One cycle through a component, as `a → b → a`: the shortest way back to its first module.
    pub fn describe_cycle(&self, component: &[String]) -> String {
        let start = &component[0];
        let inside: BTreeSet<&String> = component.iter().collect();
        let mut came_from: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        while let Some(v) = queue.pop_front() {
            for w in self.edges_from(&v) {
                if !inside.contains(&w) {
                    continue;
                }
                if &w == start {
                    let mut way = vec![start.clone(), v.clone()];
                    let mut at = v.clone();
                    while let Some(prev) = came_from.get(&at) {
                        way.push(prev.clone());
                        at = prev.clone();
                    }
                    way.reverse();
                    way.push(start.clone());
                    way.dedup();
                    return way.join(" → ");
                }
                if !came_from.contains_key(&w) && &w != start {
                    came_from.insert(w.clone(), v.clone());
                    queue.push_back(w);
                }
            }
        }
        component.join(", ")
    }
}

fn name_of(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

/// One source file: its tokens, and which module each stretch of them belongs to.
struct SourceFile {
    tokens: Vec<String>,
    /// Inline modules and the file's own: the token range each covers (innermost wins).
    scopes: Vec<Scope>,
}

struct Scope {
    module: Vec<String>,
    start: usize,
    end: usize,
}

fn load(path: &Path, module: Vec<String>, owns_dir: bool, files: &mut Vec<SourceFile>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let path_attrs = path_attributes(&text);
    let tokens = tokenize(&strip(&text));
    // Children of a file live in its folder (`lib.rs`, `main.rs`, `mod.rs`, a crate root) or
    // in a folder named after it (`a.rs` → `a/`).
    let dir = if owns_dir { path.parent().unwrap().to_path_buf() } else { path.with_extension("") };
    let mut scopes = vec![Scope { module: module.clone(), start: 0, end: tokens.len() }];
    let mut open: Vec<(Vec<String>, usize, i32)> = Vec::new();
    let mut depth = 0;
    let mut children = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if open.last().is_some_and(|(_, _, d)| *d == depth) {
                    let (m, start, _) = open.pop().unwrap();
                    scopes.push(Scope { module: m, start, end: i });
                }
            }
            "mod" if i + 2 < tokens.len() && is_ident(&tokens[i + 1]) => {
                let name = tokens[i + 1].clone();
                let inner: Vec<String> = open.last().map(|(m, _, _)| m.clone()).unwrap_or_else(|| module.clone());
                let mut child = inner.clone();
                child.push(name.clone());
                if tokens[i + 2] == ";" {
                    let inline_dirs: Vec<&String> = inner[module.len()..].iter().collect();
                    let mut base = dir.clone();
                    for d in inline_dirs {
                        base.push(d);
                    }
                    let file = match path_attrs.get(&name) {
                        Some(p) => path.parent().unwrap().join(p),
                        None if base.join(format!("{name}.rs")).is_file() => base.join(format!("{name}.rs")),
                        None => base.join(&name).join("mod.rs"),
                    };
                    let owns = file.file_name().is_some_and(|f| f == "mod.rs");
                    children.push((file, child, owns));
                } else if tokens[i + 2] == "{" {
                    open.push((child, i + 3, depth));
                }
            }
            _ => {}
        }
        i += 1;
    }
    files.push(SourceFile { tokens, scopes });
    for (file, child, owns) in children {
        load(&file, child, owns, files)?;
    }
    Ok(())
}

/// `#[path = "x.rs"] mod name;` in the raw text: name → path.
fn path_attributes(text: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut pending: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#[path") {
            pending = rest.split('"').nth(1).map(str::to_string);
        } else if let (Some(p), Some(rest)) = (&pending, line.strip_prefix("mod ").or_else(|| line.strip_prefix("pub mod "))) {
            found.insert(rest.trim_end_matches(';').trim().to_string(), p.clone());
            pending = None;
        }
    }
    found
}

/// Every path a file names, with the module it is named from.
fn paths_named(file: &SourceFile) -> Vec<(Vec<String>, Vec<String>)> {
    let module_at = |i: usize| -> Vec<String> {
        file.scopes.iter().filter(|s| s.start <= i && i <= s.end).max_by_key(|s| s.start).map(|s| s.module.clone()).unwrap_or_default()
    };
    let t = &file.tokens;
    let mut found = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] == "use" {
            let end = (i..t.len()).find(|&j| t[j] == ";").unwrap_or(t.len());
            for path in expand_use(&t[i + 1..end]) {
                found.push((module_at(i), path));
            }
            i = end;
            continue;
        }
        let after_dollar = i > 0 && t[i - 1] == "$";
        let continues_path = i > 0 && t[i - 1] == "::";
        if is_ident(&t[i]) && !after_dollar && !continues_path && t.get(i + 1).is_some_and(|n| n == "::") {
            let mut path = vec![t[i].clone()];
            let mut j = i + 1;
            while j + 1 < t.len() && t[j] == "::" && is_ident(&t[j + 1]) {
                path.push(t[j + 1].clone());
                j += 2;
            }
            found.push((module_at(i), path));
            i = j;
            continue;
        }
        i += 1;
    }
    found
}

/// The paths of a use tree: `crate::{a, b::{c, d}}` → `crate::a`, `crate::b::c`, `crate::b::d`.
fn expand_use(tokens: &[String]) -> Vec<Vec<String>> {
    fn tree(tokens: &[String], at: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        while *at < tokens.len() {
            let tok = tokens[*at].as_str();
            match tok {
                "{" => {
                    *at += 1;
                    loop {
                        tree(tokens, at, path.clone(), out);
                        match tokens.get(*at).map(String::as_str) {
                            Some(",") => *at += 1,
                            Some("}") => {
                                *at += 1;
                                return;
                            }
                            _ => return,
                        }
                        if tokens.get(*at).is_some_and(|t| t == "}") {
                            *at += 1;
                            return;
                        }
                    }
                }
                "::" => *at += 1,
                "," | "}" => break,
                "as" => *at += 2,
                "*" => *at += 1,
                _ if is_ident(tok) => {
                    path.push(tok.to_string());
                    *at += 1;
                }
                _ => *at += 1,
            }
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    let mut out = Vec::new();
    let start = tokens.iter().position(|t| t != "::").unwrap_or(0);
    let mut at = start;
    tree(tokens, &mut at, Vec::new(), &mut out);
    out
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::`, and every other character as its own token.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_string());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// The code with comments, string literals and character literals blanked out.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c[i] == 'r' && (next == Some('"') || (next == Some('#') && !c.get(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric()))) {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len() && !(c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#'))) {
                j += 1;
            }
            i = j + 1 + hashes;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a), which stays.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}
