#pragma once
// SHA-256 (OpenSSL) as lowercase hex, for bundle content hashes.
#include <filesystem>
#include <string>
#include <string_view>

namespace moe::remote {

std::string sha256_hex(std::string_view data);
std::string sha256_file_hex(const std::filesystem::path& path);  // throws moe::Error naming the file

}  // namespace moe::remote
