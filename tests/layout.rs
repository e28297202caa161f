//! The library has no user interface in it: no module below the binary prints, draws a progress
//! bar, parses flags or names a command-line type (the binary's `src/main.rs` and `src/cli/` do).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_library_neither_prints_nor_parses_flags() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let binary = [src.join("main.rs"), src.join("cli")];
    let mut offences = vec![];
    for file in files
        .iter()
        .filter(|f| !binary.iter().any(|b| f.starts_with(b)))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in [
                "println!",
                "eprintln!",
                "print!(",
                "eprint!(",
                "clap::",
                "use clap",
                "indicatif",
            ] {
                if code.contains(word) {
                    offences.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(files.len() > 40, "found only {} source files", files.len());
    assert!(
        offences.is_empty(),
        "UI in the library:\n{}",
        offences.join("\n")
    );
}
