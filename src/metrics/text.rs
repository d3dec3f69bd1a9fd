//! The pieces of Prometheus's text exposition format the member families
//! are written with (`member`): a family's header and escaped label values.

/// `# HELP` and `# TYPE` lines of `route53_failover_<name>`.
pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str("# HELP route53_failover_");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE route53_failover_");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// A label value, escaped: backslash, double quote and newline.
pub(super) fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
