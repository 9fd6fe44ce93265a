//! What `roster` and `rosterd` share at their edges: parsing the command line, and the exit codes scripts can
//! trust (0 success, 2 bad input, 1 a failure at run time) with the error's one line on stderr.

use std::fmt;
use std::process::ExitCode;

use clap::Parser;

/// An error in what the operator gave us: exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The command line parsed; on `--help` and `--version` the text printed and success, on a bad flag the
/// problem on one line (clap's hints after it: a similar flag, the usage) and exit code 2.
pub fn parse<P: Parser>(program: &str, args: Vec<std::ffi::OsString>) -> Result<P, ExitCode> {
    match P::try_parse_from(args) {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let message = rendered.trim_end();
            eprintln!(
                "{program}: {}",
                message.strip_prefix("error: ").unwrap_or(message)
            );
            Err(ExitCode::from(2))
        }
    }
}

/// The exit code of a command's result: 2 when the operator's input was wrong, 1 for any other failure, with
/// the error on one line.
pub fn code(program: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("{program}: {line}");
            let bad_input = e.downcast_ref::<BadInput>().is_some()
                || e.downcast_ref::<roster_agent::AgentError>()
                    .is_some_and(|a| a.is_bad_input());
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}
