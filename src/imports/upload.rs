//! An uploaded file, streamed to the upload folder while it is hashed:
//! never held whole in memory, never copied. It is written under a name of
//! its own, flushed to disk, and only then given its content's name
//! (`<sha256>.<its own>.csv`), so a file that is there under it is whole. A
//! body refused half way (too large, cut off, the disk full) leaves nothing.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// A file stored whole in the upload folder.
#[derive(Debug, Clone)]
pub struct StoredUpload {
    pub path: PathBuf,
    /// The SHA-256 of its bytes, hex.
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("there is no room left to store the file")]
    StorageFull,
    #[error("the body could not be read: {0}")]
    Body(String),
    #[error("the file could not be stored")]
    Io(#[from] std::io::Error),
}

/// What the client hears of an upload that could not be stored.
impl From<UploadError> for crate::error::ApiError {
    fn from(err: UploadError) -> Self {
        use crate::error::{ApiError, ErrorCode};
        use actix_web::http::StatusCode;
        match err {
            UploadError::TooLarge { limit } => {
                ApiError::payload_too_large(usize::try_from(limit).unwrap_or(usize::MAX))
            }
            UploadError::StorageFull => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::StorageFull,
                "there is no room to store this file now; nothing was kept; send it again later",
            ),
            UploadError::Body(message) => ApiError::bad_request(
                ErrorCode::InvalidBody,
                format!("the body could not be read: {message}; nothing was kept"),
            ),
            UploadError::Io(err) => ApiError::internal(&crate::error::error_chain(&err)),
        }
    }
}

/// Removes a stored upload that no job needs; one already gone is fine.
pub async fn forget(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            tracing::warn!(file = %path.display(), error = %err, "a stored upload could not be removed")
        }
    }
}

/// Removes the part files in `dir`'s `incoming` folder last written
/// `older_than` ago or more: uploads a crash cut off (one still coming is
/// written to as it streams). Answers how many it removed.
pub async fn sweep_partial(dir: &Path, older_than: std::time::Duration) -> usize {
    let Ok(mut entries) = tokio::fs::read_dir(dir.join("incoming")).await else {
        return 0;
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        let stale = entry
            .metadata()
            .await
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age >= older_than);
        if stale && path.extension().is_some_and(|e| e == "part") {
            forget(&path).await;
            removed += 1;
        }
    }
    removed
}

/// A part file removed unless it was given its final name.
struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_error(err: std::io::Error) -> UploadError {
    match err.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => UploadError::StorageFull,
        _ => UploadError::Io(err),
    }
}

/// Streams `body` into `dir`, refusing it as soon as it passes `limit`.
pub async fn store_stream<S, B, E>(
    dir: &Path,
    body: S,
    limit: u64,
) -> Result<StoredUpload, UploadError>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let incoming = dir.join("incoming");
    tokio::fs::create_dir_all(&incoming)
        .await
        .map_err(io_error)?;
    let name = uuid::Uuid::now_v7();
    let mut partial = Partial {
        path: incoming.join(format!("{name}.part")),
        kept: false,
    };
    let mut file = tokio::fs::File::create(&partial.path)
        .await
        .map_err(io_error)?;
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
        let chunk = chunk.as_ref();
        bytes += chunk.len() as u64;
        if bytes > limit {
            return Err(UploadError::TooLarge { limit });
        }
        hash.update(chunk);
        file.write_all(chunk).await.map_err(io_error)?;
    }
    file.flush().await.map_err(io_error)?;
    file.sync_all().await.map_err(io_error)?;
    drop(file);
    let sha256 = hex::encode(hash.finalize());
    // Each upload its own file, which its job removes when it ends.
    let path = dir.join(format!("{sha256}.{name}.csv"));
    tokio::fs::rename(&partial.path, &path)
        .await
        .map_err(io_error)?;
    partial.kept = true;
    let dir = dir.to_owned();
    // The new name survives a crash only once the folder is flushed too.
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(|e| UploadError::Io(std::io::Error::other(e)))?
        .map_err(io_error)?;
    Ok(StoredUpload {
        path,
        sha256,
        bytes,
    })
}

/// Stores a copy of a local file (the command line's) the same way.
pub async fn store_file(dir: &Path, file: &Path, limit: u64) -> Result<StoredUpload, UploadError> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(file).await?;
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(buffer), Some(file)))
            }
            Err(err) => Some((Err(err), None)),
        }
    });
    store_stream(dir, chunks, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(
        parts: Vec<Result<Vec<u8>, String>>,
    ) -> impl Stream<Item = Result<Vec<u8>, String>> {
        futures_util::stream::iter(parts)
    }

    #[tokio::test]
    async fn a_stored_file_is_named_by_its_content_and_hashed_as_it_streams() {
        let dir = tempfile::tempdir().unwrap();
        let parts = vec![Ok(b"a,b\n".to_vec()), Ok(b"1,2\n".to_vec())];
        let stored = store_stream(dir.path(), stream_of(parts), 100)
            .await
            .unwrap();
        let expected = hex::encode(Sha256::digest(b"a,b\n1,2\n"));
        assert_eq!(stored.sha256, expected);
        assert_eq!(stored.bytes, 8);
        let name = stored.path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(&format!("{expected}.")) && name.ends_with(".csv"),
            "{name}"
        );
        assert_eq!(std::fs::read(&stored.path).unwrap(), b"a,b\n1,2\n");
        let again = store_stream(dir.path(), stream_of(vec![Ok(b"a,b\n1,2\n".to_vec())]), 100)
            .await
            .unwrap();
        assert_eq!(again.sha256, stored.sha256);
        assert_ne!(again.path, stored.path);
        assert_eq!(
            std::fs::read_dir(dir.path().join("incoming"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn part_files_a_crash_left_are_swept_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let incoming = dir.path().join("incoming");
        std::fs::create_dir_all(&incoming).unwrap();
        let old = incoming.join("cut-off.part");
        let fresh = incoming.join("coming.part");
        let other = incoming.join("note.txt");
        for path in [&old, &fresh, &other] {
            std::fs::write(path, b"x").unwrap();
        }
        let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        for path in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(day_ago)
                .unwrap();
        }
        let swept = sweep_partial(dir.path(), std::time::Duration::from_secs(3_600)).await;
        assert_eq!(swept, 1);
        assert!(!old.exists() && fresh.exists() && other.exists());
        assert_eq!(
            sweep_partial(&dir.path().join("none"), std::time::Duration::ZERO).await,
            0
        );
    }

    #[tokio::test]
    async fn a_body_refused_half_way_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![Ok(vec![b'x'; 60]), Ok(vec![b'x'; 60])];
        let err = store_stream(dir.path(), stream_of(big), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::TooLarge { limit: 100 }), "{err}");
        let cut = vec![Ok(vec![b'x'; 10]), Err("connection reset".to_owned())];
        let err = store_stream(dir.path(), stream_of(cut), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::Body(_)), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("incoming")]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("incoming"))
                .unwrap()
                .count(),
            0
        );
    }
}
