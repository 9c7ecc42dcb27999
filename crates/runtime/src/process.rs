//! The action-loop child process: started with a pipe on fd 3, fed one line on stdin, answering one
//! line on fd 3. Detects the child's death while waiting, so a crash never hangs an activation.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStdin, Command};

/// Read buffers that grew past this are shrunk back after an activation, so one huge result does
/// not pin memory for the container's lifetime.
const KEEP_CAPACITY: usize = 1 << 20;

/// A running action-loop process.
pub(crate) struct ActionProcess {
    child: Child,
    stdin: ChildStdin,
    replies: BufReader<pipe::Receiver>,
    /// The next line to send (filled by the caller; must end with `\n`). Reused across activations.
    pub out: Vec<u8>,
    /// The last line received, without its trailing newline. Reused across activations.
    pub line: Vec<u8>,
}

/// The process is gone (or stopped speaking the protocol); the string says how.
#[derive(Debug, Clone)]
pub(crate) struct Exited(pub String);

impl ActionProcess {
    /// Starts `program args...` in `cwd` with extra environment `env` (on top of ours), stdin
    /// piped, stdout and stderr inherited, and the write end of a fresh pipe as its fd 3.
    pub fn spawn<'a>(
        program: &OsStr,
        args: &[&OsStr],
        cwd: &Path,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> io::Result<Self> {
        Self::spawn_with(program, args, cwd, env, None)
    }

    /// As [`ActionProcess::spawn`], but with stdout and stderr going to pipes whose read ends are
    /// returned (stdout, stderr), so the runtime can tell this process's output apart.
    pub fn spawn_captured<'a>(
        program: &OsStr,
        args: &[&OsStr],
        cwd: &Path,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> io::Result<(Self, [pipe::Receiver; 2])> {
        let (out_r, out_w) = cloexec_pipe()?;
        let (err_r, err_w) = cloexec_pipe()?;
        let process = Self::spawn_with(program, args, cwd, env, Some([out_w, err_w]))?;
        Ok((
            process,
            [
                pipe::Receiver::from_owned_fd(out_r)?,
                pipe::Receiver::from_owned_fd(err_r)?,
            ],
        ))
    }

    fn spawn_with<'a>(
        program: &OsStr,
        args: &[&OsStr],
        cwd: &Path,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
        output: Option<[OwnedFd; 2]>,
    ) -> io::Result<Self> {
        let (read_end, write_end) = cloexec_pipe()?;
        let fd = write_end.as_raw_fd();
        let (stdout, stderr) = match output {
            // Stdio from an OwnedFd is dup'ed into place in the child (close-on-exec is cleared).
            Some([out, err]) => (Stdio::from(out), Stdio::from(err)),
            None => (Stdio::inherit(), Stdio::inherit()),
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        // SAFETY: the closure runs in the forked child before exec and only calls the
        // async-signal-safe functions dup2 and fcntl on a descriptor that is open in the child.
        unsafe {
            cmd.pre_exec(move || {
                if fd == 3 {
                    // Already in place: only clear close-on-exec.
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) == -1 {
                    // dup2 leaves close-on-exec clear on the new descriptor.
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        // Our copy of the write end must go, or we would never see end-of-file when the child dies.
        drop(write_end);
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("child has no stdin"))?;
        let replies = BufReader::with_capacity(64 * 1024, pipe::Receiver::from_owned_fd(read_end)?);
        Ok(Self {
            child,
            stdin,
            replies,
            out: Vec::with_capacity(4096),
            line: Vec::with_capacity(4096),
        })
    }

    /// Sends `self.out` and reads one reply line into `self.line`.
    pub async fn exchange(&mut self) -> Result<(), Exited> {
        self.line.clear();
        let Self {
            child,
            stdin,
            replies,
            out,
            line,
        } = self;
        let io = async {
            stdin.write_all(out).await?;
            stdin.flush().await?;
            replies.read_until(b'\n', line).await
        };
        let outcome = Self::race(child, io).await?;
        Self::finish(child, line, outcome).await
    }

    /// Reads one line into `self.line` without sending anything (an actionloop ack).
    pub async fn read_line(&mut self) -> Result<(), Exited> {
        self.line.clear();
        let Self {
            child,
            replies,
            line,
            ..
        } = self;
        let outcome = Self::race(child, replies.read_until(b'\n', line)).await?;
        Self::finish(child, line, outcome).await
    }

    /// Runs `io` unless the child exits first.
    async fn race(
        child: &mut Child,
        io: impl std::future::Future<Output = io::Result<usize>>,
    ) -> Result<io::Result<usize>, Exited> {
        // Reading comes first: a reply written just before the process exits still counts.
        tokio::select! {
            biased;
            r = io => Ok(r),
            status = child.wait() => Err(Exited(describe(status))),
        }
    }

    async fn finish(
        child: &mut Child,
        line: &mut Vec<u8>,
        outcome: io::Result<usize>,
    ) -> Result<(), Exited> {
        match outcome {
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(())
            }
            // End of file on fd 3: the process closed it, most likely by exiting.
            Ok(_) => Err(Exited(
                exit_status_soon(child, "closed file descriptor 3").await,
            )),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                Err(Exited(exit_status_soon(child, "closed its stdin").await))
            }
            Err(e) => Err(Exited(format!("could not be talked to: {e}"))),
        }
    }

    /// Splits the process into its parts, for an action loop that has several requests in flight
    /// at once (see `server::Mux`).
    pub fn into_parts(self) -> (Child, ChildStdin, BufReader<pipe::Receiver>) {
        (self.child, self.stdin, self.replies)
    }

    /// Shrinks buffers after an unusually large exchange.
    pub fn trim(&mut self) {
        for buf in [&mut self.out, &mut self.line] {
            if buf.capacity() > KEEP_CAPACITY {
                buf.clear();
                buf.shrink_to(64 * 1024);
            }
        }
    }
}

/// How the child ended, if it ends within a moment; otherwise `alive` (it broke the protocol
/// without exiting).
pub(crate) async fn exit_status_soon(child: &mut Child, alive: &str) -> String {
    match tokio::time::timeout(std::time::Duration::from_millis(200), child.wait()).await {
        Ok(status) => describe(status),
        Err(_) => alive.to_string(),
    }
}

pub(crate) fn describe(status: io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => "exited".to_string(),
        },
        Err(e) => format!("exited ({e})"),
    }
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
