// replay_main.cpp — the fuzz targets as plain programs for the normal build:
// feeds every file under the directories given (the seed corpus and every
// crash once found) to LLVMFuzzerTestOneInput, so ctest replays them with
// gcc, with and without -DWIREHUB_ASAN=ON, on machines without clang.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path dir(argv[i]);
    if (fs::is_regular_file(dir)) {
      files.push_back(dir);
      continue;
    }
    if (!fs::is_directory(dir)) continue;  // crashes/<target>/ exists only once something was found
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay %s (%zu bytes)\n", f.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  // A seed corpus that vanished would make this test pass on nothing.
  return files.empty() ? 1 : 0;
}
