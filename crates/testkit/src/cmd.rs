//! Programs run from tests: an argument vector, never a shell. Every failure message carries
//! the command line as a person would type it and what the program wrote to standard error.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// What a finished program printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub ok: bool,
    /// The exit code (`None`: ended by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` (no input) to its end: its exit code, standard output and standard error.
/// Panics, naming the command, when it cannot be started.
pub fn code_out_err(cmd: Command) -> (Option<i32>, String, String) {
    let o = output(cmd, None).unwrap_or_else(|e| panic!("{e}"));
    (o.code, o.stdout, o.stderr)
}

/// A command line as a person would type it.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to its end with `stdin` as its input (none: `/dev/null`). `Err` only when the
/// program cannot be started; a non-zero exit is an [`Output`] with `ok == false`.
pub fn output(mut cmd: Command, stdin: Option<&str>) -> Result<Output, String> {
    let shown = show(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{shown}: {e}"))?;
    // Written from a thread: a program that answers before it has read everything cannot
    // block on a full pipe while we block on its input.
    let writer = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut input)) => {
            let text = text.to_string();
            Some(std::thread::spawn(move || {
                let _ = input.write_all(text.as_bytes());
            }))
        }
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `cmd`; its standard output, or `command line: standard error`.
pub fn run_cmd(cmd: Command, stdin: Option<&str>) -> Result<String, String> {
    let shown = show(&cmd);
    let out = output(cmd, stdin)?;
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(format!("{shown}: {}", out.stderr.trim()))
    }
}

/// [`run_cmd`], panicking with its error.
pub fn must_cmd(cmd: Command, stdin: Option<&str>) -> String {
    run_cmd(cmd, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// A command from `args` (the program, then its arguments).
pub fn command(args: &[&str]) -> Command {
    let (program, rest) = args.split_first().expect("a program to run");
    let mut c = Command::new(program);
    c.args(rest);
    c
}

/// Runs `args` (the program, then its arguments); its standard output, or an error with the
/// command line and its standard error.
pub fn run(args: &[&str]) -> Result<String, String> {
    run_cmd(command(args), None)
}

/// [`run`], panicking with the command line and its standard error when it fails.
pub fn must(args: &[&str]) -> String {
    must_cmd(command(args), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_command_and_its_stderr() {
        let e = run(&["sh", "-c", "echo nope >&2; exit 3"]).expect_err("exit 3 fails");
        assert_eq!(e, "sh -c echo nope >&2; exit 3: nope");
        assert_eq!(run(&["echo", "yes"]).as_deref(), Ok("yes\n"));
    }

    #[test]
    fn stdin_reaches_the_program() {
        let out = run_cmd(command(&["cat"]), Some("in\n")).expect("cat");
        assert_eq!(out, "in\n");
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let e = run(&["portolan-no-such-program", "x"]).expect_err("not found");
        assert!(e.starts_with("portolan-no-such-program x: "), "{e}");
    }
}
