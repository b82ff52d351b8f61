//! Reading a new user's password for `bt-tracker user add`.

use std::io::{BufRead, IsTerminal, Write};

use super::CliError;

/// The environment variable a password may be given in instead of standard input.
pub const PASSWORD_VARIABLE: &str = "BT_TRACKER_PASSWORD";

/// The password from [`PASSWORD_VARIABLE`], else one line of standard input; the prompt
/// is shown only when standard input is a terminal, so a piped password is read silently.
pub fn read_password() -> Result<String, CliError> {
    if let Ok(password) = std::env::var(PASSWORD_VARIABLE) {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(CliError::io("reading the password from standard input"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(CliError::Password(format!(
            "no password given: type one, pipe one in, or set {PASSWORD_VARIABLE}"
        )));
    }
    Ok(password)
}
