//! How a command prints its result: pretty JSON for scripts (`--format json`), else a text for
//! people, most often built around a [`table`] in the house style.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

use crate::cli::OutputArgs;

/// Prints `value` as the `portolan/<kind>/v1` document (`crate::contract`) when the command
/// line asked for JSON, else the text `human` makes (printed as it is: it ends with its own
/// newline).
pub fn print<T: Serialize + ?Sized>(
    out: &OutputArgs,
    kind: &str,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if out.json() {
        crate::contract::print(kind, value)?;
    } else {
        print!("{}", human());
    }
    Ok(())
}

/// A table with this header, in the style every command uses: condensed UTF-8 lines, cells
/// not wrapped. A command whose table can be wide fits it with `crate::table::fit` (the
/// terminal's width, 80 when it reports none or output is no terminal).
pub fn table<T: ToString>(header: impl IntoIterator<Item = T>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(
            header
                .into_iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        );
    t
}
