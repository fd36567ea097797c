//! Regular-file reads: FIFOs, devices, directories, symlinks and oversize
//! files are refused quickly with an error naming the file and the limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use kf_files::{confined_join, read_capped, read_regular, read_regular_text, FileErrorKind, Links};

/// Makes the FIFO `dir/name`.
#[cfg(unix)]
fn mkfifo(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// Makes the symbolic link `dir/name` to `target`.
#[cfg(unix)]
fn symlink(dir: &Path, name: &str, target: &Path) -> std::path::PathBuf {
    let link = dir.join(name);
    std::os::unix::fs::symlink(target, &link).unwrap();
    link
}

/// The message of a refused read of `path` with a 10-byte cap.
fn refusal(path: &Path, links: Links) -> String {
    read_regular(path, 10, links).unwrap_err().to_string()
}

#[test]
fn regular_file_within_cap_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    std::fs::write(&p, b"hello").unwrap();
    assert_eq!(read_regular(&p, 5, Links::Refuse).unwrap(), b"hello");
    assert_eq!(read_regular_text(&p, 5, Links::Follow).unwrap(), "hello");
}

#[test]
fn oversize_file_names_file_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.txt");
    std::fs::write(&p, vec![b'x'; 100]).unwrap();
    let e = read_regular(&p, 99, Links::Follow).unwrap_err().to_string();
    assert!(
        e.contains("big.txt") && e.contains("limit of 99 bytes"),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let p = mkfifo(dir.path(), "pipe");
    let e = refusal(&p, Links::Follow);
    assert!(e.contains("pipe") && e.contains("FIFO"), "{e}");
}

#[cfg(unix)]
#[test]
fn device_is_refused() {
    let e = refusal(Path::new("/dev/zero"), Links::Follow);
    assert!(e.contains("/dev/zero") && e.contains("regular file"), "{e}");
}

#[test]
fn directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(dir.path(), Links::Follow);
    assert!(e.contains("a directory"), "{e}");
}

#[cfg(unix)]
#[test]
fn symlink_refused_when_asked_followed_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, b"x").unwrap();
    let link = symlink(dir.path(), "link", &target);
    let e = refusal(&link, Links::Refuse);
    assert!(e.contains("link") && e.contains("symbolic link"), "{e}");
    assert_eq!(read_regular(&link, 10, Links::Follow).unwrap(), b"x");
}

#[cfg(unix)]
#[test]
fn symlink_to_fifo_followed_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = mkfifo(dir.path(), "fifo");
    let link = symlink(dir.path(), "cfg.toml", &fifo);
    let e = refusal(&link, Links::Follow);
    assert!(e.contains("cfg.toml") && e.contains("FIFO"), "{e}");
}

#[test]
fn capped_stream_is_cut() {
    let e = read_capped(std::io::repeat(0).take_bytes(), 1000, Path::new("<stdin>"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("<stdin>") && e.contains("limit of 1000 bytes"),
        "{e}"
    );
    assert_eq!(read_capped(&b"abc"[..], 3, Path::new("-")).unwrap(), b"abc");
}

trait TakeBytes {
    fn take_bytes(self) -> std::io::Take<std::io::Repeat>;
}
impl TakeBytes for std::io::Repeat {
    fn take_bytes(self) -> std::io::Take<std::io::Repeat> {
        std::io::Read::take(self, u64::MAX)
    }
}

#[test]
fn confined_join_refuses_escapes() {
    let d = Path::new("/srv/pki");
    assert_eq!(confined_join(d, "st-1").unwrap(), d.join("st-1"));
    let separator = "contains a path separator or NUL";
    let not_plain = "is not a plain file name";
    for (bad, why) in [
        ("", "is empty"),
        ("..", not_plain),
        (".", not_plain),
        ("../x", separator),
        ("../../x", separator),
        ("a/b", separator),
        ("/etc", separator),
        ("a\\b", separator),
        ("a\0b", separator),
    ] {
        let err = confined_join(d, bad).unwrap_err();
        let expected = format!("name {bad:?} {why}");
        assert!(
            matches!(err.kind(), FileErrorKind::BadName(m) if *m == expected),
            "{bad:?}: {err:?}"
        );
        assert_eq!(err.path(), d.join(bad), "{bad:?}");
    }
}

#[cfg(unix)]
#[test]
fn wipe_and_remove_zeroes_the_content_before_removing_and_refuses_links() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("key.der");
    std::fs::write(&p, [0xA5u8; 5000]).unwrap();
    // A second hard link sees the same inode: after the wipe it holds zeros.
    let witness = dir.path().join("witness");
    std::fs::hard_link(&p, &witness).unwrap();
    kf_files::wipe_and_remove(&p).unwrap();
    assert!(!p.exists());
    assert_eq!(std::fs::read(&witness).unwrap(), vec![0u8; 5000]);

    let target = dir.path().join("target");
    std::fs::write(&target, b"secret").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // O_NOFOLLOW: opening the link itself fails with ELOOP.
    let err = kf_files::wipe_and_remove(&link).unwrap_err();
    assert!(
        matches!(err.kind(), FileErrorKind::Io(e) if e.raw_os_error() == Some(libc::ELOOP)),
        "{err:?}"
    );
    assert_eq!(err.path(), link);
    assert_eq!(std::fs::read(&target).unwrap(), b"secret");
    let fifo = mkfifo(dir.path(), "fifo");
    // A write-only, non-blocking open of a FIFO without a reader fails with ENXIO.
    let err = kf_files::wipe_and_remove(&fifo).unwrap_err();
    assert!(
        matches!(err.kind(), FileErrorKind::Io(e) if e.raw_os_error() == Some(libc::ENXIO)),
        "{err:?}"
    );
    assert_eq!(err.path(), fifo);
    assert!(matches!(
        kf_files::wipe_and_remove(&dir.path().join("missing"))
            .unwrap_err()
            .kind(),
        kf_files::FileErrorKind::Missing
    ));
}
