#!/usr/bin/env bash
# Regenerates Sources/OnnxImport/onnx.pb.swift, the Swift types of ONNX's protobuf schema that
# `quac-host import MODEL.onnx` reads. Run once when the schema or swift-protobuf changes; the output
# is committed, so neither the build nor CI needs protoc or this script.
#
# Needs protoc (apt protobuf-compiler), pip, git and the Swift toolchain. It takes onnx.proto from the
# onnx package on PyPI (downloaded into a temporary folder, never installed) and builds
# protoc-gen-swift from swift-protobuf at the version Package.swift names.
set -euo pipefail
cd "$(dirname "$0")/../.."
ONNX_VERSION="${ONNX_VERSION:-1.14.1}"
PROTOBUF_VERSION="${PROTOBUF_VERSION:-1.39.0}"
PROTOBUF_GIT="${PROTOBUF_GIT:-https://github.com/apple/swift-protobuf.git}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
    -d "$work/wheel" "onnx==$ONNX_VERSION"
mkdir -p "$work/proto/onnx"
unzip -q -o -j "$work"/wheel/onnx-*.whl 'onnx/onnx.proto' -d "$work/proto/onnx"

git clone --quiet --depth 1 --branch "$PROTOBUF_VERSION" "$PROTOBUF_GIT" "$work/swift-protobuf"
swift build --package-path "$work/swift-protobuf" --product protoc-gen-swift -c release
plugin="$(swift build --package-path "$work/swift-protobuf" -c release --show-bin-path)/protoc-gen-swift"

protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Public --swift_out="$work/out" \
    -I "$work/proto" "$work/proto/onnx/onnx.proto" 2>/dev/null || {
  mkdir -p "$work/out"
  protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Public --swift_out="$work/out" \
      -I "$work/proto" "$work/proto/onnx/onnx.proto"
}
cp "$work/out/onnx/onnx.pb.swift" Sources/OnnxImport/onnx.pb.swift
echo "wrote Sources/OnnxImport/onnx.pb.swift (onnx $ONNX_VERSION, swift-protobuf $PROTOBUF_VERSION)"
