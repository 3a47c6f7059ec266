//! `extmem generate` (hidden): the man pages and shell completions of this command line,
//! generated from its clap definitions, for packages to install.

use crate::support::error::{CliError, Result};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Write the man pages or the shell completions of `extmem` into a folder (for packages).
///
/// `extmem generate man DIR` writes extmem.1 and one page per subcommand (extmem-demo.1,
/// extmem-bench-pool.1, ...), for /usr/share/man/man1. `extmem generate completions DIR`
/// writes extmem.bash (for /usr/share/bash-completion/completions/extmem), _extmem (zsh,
/// /usr/share/zsh/vendor-completions) and extmem.fish (/usr/share/fish/vendor_completions.d).
/// DIR is created where missing. Hidden subcommands have no page.
#[derive(clap::Parser)]
#[command(name = "generate", hide = true)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Man pages (roff), one per visible command: extmem.1, extmem-demo.1, ...
    Man {
        /// The folder to write them into.
        dir: PathBuf,
    },
    /// Completions for bash (extmem.bash), zsh (_extmem) and fish (extmem.fish).
    Completions {
        /// The folder to write them into.
        dir: PathBuf,
    },
}

/// The definition of `extmem generate`.
pub fn cli() -> Command {
    Args::command()
}

fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(CliError::io(format!("creating {}", dir.display())))
}

/// Runs `extmem generate`: writes the files and names each on stdout.
pub fn run(matches: &ArgMatches, tree: &Command) -> Result<ExitCode> {
    let args = Args::from_arg_matches(matches)?;
    let mut written = Vec::new();
    match args.what {
        What::Man { dir } => {
            create(&dir)?;
            clap_mangen::generate_to(tree.clone(), &dir)
                .map_err(CliError::io(format!("writing man pages into {}", dir.display())))?;
            let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(CliError::io(format!("listing {}", dir.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "1"))
                .collect();
            pages.sort();
            written.extend(pages);
        }
        What::Completions { dir } => {
            create(&dir)?;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let mut cmd = tree.clone();
                let path = clap_complete::generate_to(shell, &mut cmd, "extmem", &dir)
                    .map_err(CliError::io(format!("writing the {shell} completion into {}", dir.display())))?;
                written.push(path);
            }
        }
    }
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
