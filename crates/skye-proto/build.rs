//! Generates the gRPC types from `proto/skye.proto` and the clients of the external vector DBs
//! (`proto/external/`) (needs `protoc`; `scripts/setup.sh`
//! installs Debian's `protobuf-compiler`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/skye.proto");
    println!("cargo:rerun-if-changed=proto/external");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Feature `grpc`: services and clients too; without it, the messages only.
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    let mut api = tonic_prost_build::configure();
    if std::env::var_os("CARGO_FEATURE_JSON").is_some() {
        // proto3 JSON: the proto's field names (already lowerCamelCase), absent = default,
        // an unknown field refused; an enum by its name or number.
        api = api
            .message_attribute(
                ".",
                "#[derive(serde::Serialize, serde::Deserialize)]\n\
                 #[serde(rename_all = \"camelCase\", default, deny_unknown_fields)]",
            )
            .field_attribute(".Filter.op", "#[serde(with = \"crate::json::operator\")]");
    }
    api.file_descriptor_set_path(out.join("skye_descriptor.bin"))
        .build_client(grpc)
        .build_server(grpc)
        .compile_protos(&["proto/skye.proto"], &["proto"])
        .map_err(|e| {
            format!(
                "protoc failed (install Debian's protobuf-compiler, or run scripts/setup.sh): {e}"
            )
        })?;
    if !grpc {
        return Ok(());
    }
    // The external services: clients for Skye, servers for their protocol tests; not part of
    // the reflection descriptor.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &["proto/external/ngt.proto", "proto/external/eigenix.proto"],
            &["proto/external"],
        )
        .map_err(|e| format!("protoc failed on proto/external: {e}"))?;
    Ok(())
}
