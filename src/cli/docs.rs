//! Every command line the docs show parses with this CLI's definition:
//! a renamed flag or subcommand fails here, naming the file and line.
//! (The other docs checks, which run the binary, are in `tests/docs.rs`.)

use clap::Parser;

// Shared with tests/docs.rs, which uses the rest of it.
#[allow(dead_code)]
#[path = "../../tests/docs/markdown.rs"]
mod markdown;

#[test]
fn every_command_line_in_the_docs_parses() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in markdown::files() {
        let text = std::fs::read_to_string(&file).expect("a doc");
        // Shell blocks' lines, and inline spans that are a command line
        // (`route53-failover drain --url URL …` in a sentence).
        let mut lines: Vec<(usize, String, Vec<String>)> = Vec::new();
        for block in markdown::blocks(&text) {
            // Shell blocks, and blocks with no language (output, and
            // sometimes a command): only daemon command lines are taken.
            if matches!(
                block.lang.as_str(),
                "sh" | "bash" | "shell" | "console" | ""
            ) {
                let found = markdown::commands(&block.text);
                lines.extend(found.into_iter().map(|(l, args)| (block.line, l, args)));
            }
        }
        for (at, span) in markdown::inline_commands(&text) {
            // A mention (`route53-failover drain`) is not a command line.
            if span.contains(" --") {
                let found = markdown::commands(&span);
                lines.extend(found.into_iter().map(|(l, args)| (at, l, args)));
            }
        }
        for (at, line, args) in lines {
            checked += 1;
            if let Err(e) = super::Cli::try_parse_from(&args) {
                use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
                if !matches!(e.kind(), DisplayHelp | DisplayVersion) {
                    let first = e.to_string().lines().next().unwrap_or("").to_string();
                    wrong.push(format!(
                        "{}:{at}: {line}\n    {first}",
                        markdown::shown(&file)
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "command lines that do not parse:\n{}",
        wrong.join("\n")
    );
    assert!(
        checked >= 10,
        "only {checked} command lines found: is the extraction broken?"
    );
}
