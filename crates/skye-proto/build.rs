//! Generates the gRPC types from `proto/skye.proto` (needs `protoc`; `scripts/setup.sh`
//! installs Debian's `protobuf-compiler`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/skye.proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("skye_descriptor.bin"))
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/skye.proto"], &["proto"])
        .map_err(|e| {
            format!(
                "protoc failed (install Debian's protobuf-compiler, or run scripts/setup.sh): {e}"
            )
        })?;
    Ok(())
}
