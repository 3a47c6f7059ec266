//! The CLI's error type: what went wrong, with the library's, CUDA's or the system's error
//! beneath it as its source, and the exit status it ends the process with (2 for a usage
//! error, as clap's own, 1 for the rest).

use std::error::Error as _;
use std::fmt;
use std::process::ExitCode;

/// An error of an `extmem` subcommand.
#[derive(Debug)]
pub enum CliError {
    /// The command line asks for something that cannot be done (exit status 2).
    Usage(String),
    /// The Vulkan loader found no driver: which package to install, or `VK_DRIVER_FILES`.
    NoDriver(extmem::Error),
    /// A library error (Vulkan, the socket, the peer, the pool ...).
    Extmem(extmem::Error),
    /// A CUDA error.
    Cuda(extmem_cuda::Error),
    /// A file or process operation.
    Io {
        /// What was being done.
        context: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The result of the CLI's functions.
pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    /// An error for a file or process operation on `context`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }

    /// The exit status this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }

    /// The error and its sources, one after another (`a: b: c`), each said once.
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        let mut source = self.source();
        while let Some(s) = source {
            let part = s.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            source = s.source();
        }
        text
    }
}

/// Whether `e` says that the loader found no Vulkan driver at all.
fn no_driver(e: &extmem::Error) -> bool {
    use extmem::vk::Result as R;
    matches!(e, extmem::Error::Vulkan { call: "vkCreateInstance", result: R::ERROR_INCOMPATIBLE_DRIVER })
        || matches!(e, extmem::Error::NoDevice(why) if why.contains("no Vulkan driver"))
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(s) => write!(f, "{s}"),
            CliError::NoDriver(_) => {
                let files = match std::env::var("VK_DRIVER_FILES").or_else(|_| std::env::var("VK_ICD_FILENAMES")) {
                    Ok(v) => {
                        format!("VK_DRIVER_FILES is {v:?}: does it name a driver manifest (an ICD .json) that exists?")
                    }
                    Err(_) => "or set VK_DRIVER_FILES to a driver's manifest (an ICD .json file)".into(),
                };
                write!(
                    f,
                    "no Vulkan driver found: install one (Debian: apt-get install mesa-vulkan-drivers for Mesa's \
                     drivers, lavapipe among them; NVIDIA: the driver's Vulkan ICD), {files}"
                )
            }
            CliError::Extmem(e) => write!(f, "{e}"),
            CliError::Cuda(e) => write!(f, "CUDA: {e}"),
            CliError::Io { context, .. } => write!(f, "{context}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Usage(_) => None,
            CliError::NoDriver(e) => Some(e),
            // Said in full by Display: its own sources follow.
            CliError::Extmem(e) => e.source(),
            CliError::Cuda(e) => e.source(),
            CliError::Io { source, .. } => Some(source),
        }
    }
}

impl From<extmem::Error> for CliError {
    fn from(e: extmem::Error) -> Self {
        if no_driver(&e) {
            CliError::NoDriver(e)
        } else {
            CliError::Extmem(e)
        }
    }
}

impl From<clap::Error> for CliError {
    fn from(e: clap::Error) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<extmem_cuda::Error> for CliError {
    fn from(e: extmem_cuda::Error) -> Self {
        CliError::Cuda(e)
    }
}

/// A CUDA error as a library error, where a library call wants one (a pool refusal sent to
/// the peer).
pub fn cuda_as_extmem(e: extmem_cuda::Error) -> extmem::Error {
    extmem::Error::Unsupported(format!("CUDA: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_driver_names_the_package_and_the_variable() {
        let e = CliError::from(extmem::Error::Vulkan {
            call: "vkCreateInstance",
            result: extmem::vk::Result::ERROR_INCOMPATIBLE_DRIVER,
        });
        let text = e.report();
        assert!(text.contains("mesa-vulkan-drivers") && text.contains("VK_DRIVER_FILES"), "{text}");
        assert!(text.contains("Unable to find a Vulkan driver"), "the source follows: {text}");
    }

    #[test]
    fn usage_errors_exit_2_and_the_rest_1() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), ExitCode::from(2));
        assert_eq!(CliError::from(extmem::Error::Peer("gone".into())).exit_code(), ExitCode::FAILURE);
    }

    #[test]
    fn io_errors_carry_their_source() {
        let e = CliError::io("reading x")(std::io::Error::from_raw_os_error(2));
        assert!(e.report().starts_with("reading x: No such file"), "{}", e.report());
    }
}
