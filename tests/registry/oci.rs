//! A one-layer OCI image layout written from scratch, so the suite needs no
//! image download, and a reader for layouts a client pulled back.
//!
//! The layer is a tar archive of one file inside a gzip stream of stored
//! (uncompressed) deflate blocks. Clients push an already compressed layer
//! unchanged, so the manifest digest computed here is exactly the digest the
//! registry reports and a pull gives back.

use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What was written: the digests a registry must report for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
    /// The compressed layer blob.
    pub layer: Vec<u8>,
}

/// Writes an OCI image layout at `dir` holding one image, tagged `tag`,
/// whose only layer holds `hello.txt` with `content`. Different contents give
/// different digests.
pub fn write_layout(dir: &Path, tag: &str, content: &str) -> Image {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
        digest
    };

    let tar = tar_of_one_file("hello.txt", content.as_bytes());
    let layer = gzip_stored(&tar);
    let layer_digest = put(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&tar)] },
    }))
    .unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": { "mediaType": CONFIG_TYPE, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": LAYER_TYPE, "digest": layer_digest, "size": layer.len() }],
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { REF_NAME: tag },
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Image {
        manifest_digest,
        config_digest,
        layer_digest,
        layer,
    }
}

/// Reads back the image tagged `tag` from a layout a client wrote, checking
/// every blob against its digest on the way.
pub fn read_layout(dir: &Path, tag: &str) -> Image {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let descriptor = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("no manifest tagged {tag} in {index}"));
    let blob = |digest: &str| {
        let bytes = fs::read(dir.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap();
        assert_eq!(
            sha256_digest(&bytes),
            digest,
            "blob content matches its digest"
        );
        bytes
    };
    let manifest_digest = descriptor["digest"].as_str().unwrap().to_string();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(&manifest_digest)).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    blob(&config_digest);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer_digest = layers[0]["digest"].as_str().unwrap().to_string();
    let layer = blob(&layer_digest);
    Image {
        manifest_digest,
        config_digest,
        layer_digest,
        layer,
    }
}

/// `sha256:<lowercase hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// A POSIX ustar archive holding one regular file.
fn tar_of_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    assert!(name.len() < 100, "ustar names here fit the name field");
    let mut header = [0u8; 512];
    let mut field =
        |offset: usize, value: &[u8]| header[offset..offset + value.len()].copy_from_slice(value);
    field(0, name.as_bytes());
    field(100, b"0000644\0"); // mode
    field(108, b"0000000\0"); // uid
    field(116, b"0000000\0"); // gid
    field(124, format!("{:011o}\0", content.len()).as_bytes());
    field(136, b"00000000000\0"); // mtime
    field(148, b"        "); // checksum counts as spaces while summing
    field(156, b"0"); // regular file
    field(257, b"ustar\0");
    field(263, b"00");
    let checksum: u32 = header.iter().map(|&byte| u32::from(byte)).sum();
    header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0); // end-of-archive marker
    tar
}

/// A gzip member (RFC 1952) whose deflate stream is stored blocks only.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    // Magic, deflate, no flags, mtime 0, no extra flags, unknown OS.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(usize::from(u16::MAX)).collect()
    };
    for (index, block) in blocks.iter().enumerate() {
        let is_final = index + 1 == blocks.len();
        out.push(u8::from(is_final)); // BFINAL, BTYPE 00 (stored)
        let len = u16::try_from(block.len()).unwrap(); // chunks of at most u16::MAX
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    // ISIZE is the input length modulo 2^32 by definition.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected), as gzip uses it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_of_the_check_string() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

/// The layer is an archive that GNU tar and gzip (what a container runtime
/// unpacking it amounts to) read back to the file that was put in.
#[test]
fn the_layer_unpacks_with_tar_and_gzip() {
    let scratch = scopegate_harness::Scratch::new("oci-layer");
    let image = write_layout(&scratch.dir("layout"), "v1", "hello from the layer\n");
    let layer = scratch.file("layer.tar.gz", &image.layer);
    let output = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(&layer)
        .arg("hello.txt")
        .output()
        .expect("tar runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, b"hello from the layer\n");
    assert_eq!(read_layout(&scratch.path().join("layout"), "v1"), image);
}
