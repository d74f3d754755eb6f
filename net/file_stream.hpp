// net/file_stream.hpp — a sandbox file streamed as an HTTP response body, and a request body
// streamed into a sandbox file, both with bounded memory (chunks move under backpressure; a
// 1 GiB file is never held). Used by the native files API and E2B's /files.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "actors/sandbox_link.hpp"
#include "net/http_types.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net {

// Streams the file at `path` as a 200 with `content_type` and `headers`. An error before the
// first byte (missing, a directory, a dangling symlink) is answered with render(error).
void send_file(exchange_ptr ex, actors::sandbox_link_ptr link, std::string path, std::string content_type,
               std::vector<std::pair<std::string, std::string>> headers,
               std::function<http_response(const error&)> render);

// Streams the request body into the file at `path`; `done` gets the size written or why not
// (then nothing has been answered: the caller renders the reply either way).
// `filter` (optional) turns each body chunk into the bytes to write (e.g. gunzip); it is called
// once more with `last` = true and an empty chunk at the end of the body.
using chunk_filter = std::function<expected<std::string>(std::string_view chunk, bool last)>;
void receive_file(exchange_ptr ex, actors::sandbox_link_ptr link, std::string path, agent::write_options opts,
                  std::function<void(expected<uint64_t>)> done, chunk_filter filter = {});

}  // namespace warren::net
