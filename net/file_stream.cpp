// net/file_stream.cpp — see file_stream.hpp.
#include "net/file_stream.hpp"

#include <atomic>

#include "net/send_window.hpp"

namespace warren::net {

namespace {

constexpr size_t download_pause_bytes = 4 * 1024 * 1024;
constexpr size_t download_resume_bytes = 1024 * 1024;

// Moves the request body into the agent's file, one chunk at a time: the next chunk is read
// from the client only when the previous one left for the agent.
struct upload : std::enable_shared_from_this<upload> {
  exchange_ptr ex;
  std::shared_ptr<agent::file_writer> w;
  std::unique_ptr<actors::stream_guard> busy;
  std::atomic<bool> failed{false};
  std::function<void(expected<uint64_t>)> done;
  chunk_filter filter;

  void fail(const error& e) {
    failed = true;
    w->cancel();
    std::function<void(expected<uint64_t>)> d;
    std::swap(d, done);
    if (d) d(e);
  }

  void next() {
    auto self = shared_from_this();
    ex->read_body_chunk([self](expected<std::string> chunk) {
      if (self->failed) return;
      if (!chunk) return self->fail(chunk.err());
      bool last = chunk->empty();
      if (self->filter) {
        auto out = self->filter(*chunk, last);
        if (!out) return self->fail(out.err());
        if (!last && out->empty()) return self->next();  // nothing to write yet
        if (last && !out->empty()) {
          return self->w->write(std::move(*out), [self](status st) {
            if (st) self->w->finish();
          });
        }
        *chunk = std::move(*out);
      }
      if (last) return self->w->finish();
      self->w->write(std::move(*chunk), [self](status st) {
        if (st) return self->next();
        // the agent refused (ENOSPC, ...): on_done reports it
      });
    });
  }
};

}  // namespace

void send_file(exchange_ptr ex, actors::sandbox_link_ptr link, std::string p, std::string content_type,
               std::vector<std::pair<std::string, std::string>> headers,
               std::function<http_response(const error&)> render) {
  // The response head goes out with the first chunk (or at the end of an empty file), so an
  // open that fails — a dangling symlink, a loop, a path swapped since the stat — answers its
  // error instead of an empty 200. Chunks then pace the agent.
  auto busy = std::make_shared<actors::stream_guard>(link->act);
  auto reader = std::make_shared<std::shared_ptr<agent::file_reader>>();
  auto started = std::make_shared<bool>(false);
  auto window = std::make_shared<send_window>(
      download_pause_bytes, download_resume_bytes,
      [reader] { if (*reader) (*reader)->pause_output(); },
      [reader] { if (*reader) (*reader)->resume_output(); });
  auto start = [ex, reader, started, content_type, headers] {
    if (*started) return;
    *started = true;
    ex->start_stream(200, content_type, headers, [reader] { if (*reader) (*reader)->cancel(); });
  };
  agent::read_callbacks cb;
  cb.on_data = [ex, window, start](std::string_view d) {
    start();
    ex->write(std::string(d), window->sent(d.size()));
  };
  cb.on_done = [ex, busy, reader, started, start, render](expected<uint64_t> n) mutable {
    busy.reset();
    if (!*started && !n) {
      ex->respond(render(n.err()));
    } else {
      start();
      ex->end();  // a read error after the head: the client sees a short body
    }
    reader->reset();
  };
  *reader = link->agent->read_file(p, std::move(cb));
}

void receive_file(exchange_ptr ex, actors::sandbox_link_ptr link, std::string path, agent::write_options opts,
                  std::function<void(expected<uint64_t>)> done, chunk_filter filter) {
  auto up = std::make_shared<upload>();
  up->ex = std::move(ex);
  up->done = std::move(done);
  up->filter = std::move(filter);
  up->busy = std::make_unique<actors::stream_guard>(link->act);
  up->w = link->agent->write_file(std::move(path), std::move(opts), [up, link](expected<uint64_t> n) {
    up->busy.reset();
    if (!n) up->failed = true;
    std::function<void(expected<uint64_t>)> d;
    std::swap(d, up->done);
    if (d) d(n);
  });
  up->next();
}

}  // namespace warren::net
