// The N-API addon: a thin layer over the C ABI (capi/wirehub.h).
//
// One hub per process in WH_EVENTS_HOST mode: the engine runs on Node's main
// thread, with no I/O thread. Its fd is watched by a uv_poll_t on the main
// loop; when it is readable the addon polls, which runs the engine's ready
// work and returns the events, in batches, handing each batch to JavaScript
// with ONE call: a shared Int32Array of per-event fields, one Buffer holding
// the batch's small payloads back to back, views of the slabs the engine
// copied its large messages into (AllocPayload), and an array of extras for
// the rare events that carry strings (upgrade requests). The per-message cost
// is then one copy and a few integer reads in JS, not a thread hop and a napi
// call per message.
//
// Handles never reach JavaScript as pointers: connections, servers and
// pending upgrade requests live in slot tables and JS names them by small
// integer ids (also used as the engine's user_data), so a stale id from JS
// can only ever yield WH_ECLOSED, never a use-after-free.
#include <napi.h>
#include <uv.h>

#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "wirehub.h"

namespace {

constexpr int kBatch = 512;  // events per call into JS
constexpr int kPoll = 4096;  // events per poll (see Drain)
constexpr int kRounds = 1;   // polls per wakeup
// type, id, flags, code, error, status, offset, len, block (0: the batch's
// payload Buffer, k: its k-th slab view; see AllocPayload)
constexpr int kFields = 9;

template <typename T>
struct SlotTable {
  std::vector<T*> slots{nullptr};  // id 0 is never used: it means "none"
  std::vector<char> used{1};
  std::vector<char> no_pong{0};  // conns: PONG events not wanted (see PongEvents)
  std::vector<uint32_t> free_ids;
  uint32_t add(T* p) {
    if (!free_ids.empty()) {
      uint32_t id = free_ids.back();
      free_ids.pop_back();
      slots[id] = p;
      used[id] = 1;
      no_pong[id] = 0;
      return id;
    }
    slots.push_back(p);
    used.push_back(1);
    no_pong.push_back(0);
    return static_cast<uint32_t>(slots.size() - 1);
  }
  bool wants_pong(uint32_t id) const { return id >= no_pong.size() || !no_pong[id]; }
  T* get(uint32_t id) const { return id < slots.size() ? slots[id] : nullptr; }
  void set(uint32_t id, T* p) {
    if (id > 0 && id < slots.size() && used[id]) slots[id] = p;
  }
  void remove(uint32_t id) {
    if (id > 0 && id < slots.size() && used[id]) {
      slots[id] = nullptr;
      used[id] = 0;
      free_ids.push_back(id);
    }
  }
};

struct Slab;

struct State {
  wh_hub* hub = nullptr;
  uv_poll_t poll;
  bool poll_started = false;
  // Runs Drain again on the loop's next turn while events wait in the queue
  // (see Drain): the hub's fd does not stay readable for those.
  uv_idle_t more;
  bool more_started = false;
  int refs = 0;
  Napi::FunctionReference dispatch;
  Napi::FunctionReference mask_fn;  // setMaskSource's (OnMask)
  Napi::Reference<Napi::Int32Array> meta;
  std::unique_ptr<Napi::AsyncContext> async_ctx;
  SlotTable<wh_conn> conns;
  SlotTable<wh_server> servers;
  SlotTable<wh_request> requests;
  wh_event events[kPoll];
  std::string scratch;
  napi_env env = nullptr;
  // Large payloads (see AllocPayload): the slab being filled, spare slabs,
  // and the allocations not yet handed to JS, in the engine's order.
  Slab* slab = nullptr;
  std::vector<Slab*> spare;
  std::deque<std::pair<Slab*, const uint8_t*>> pending;
  // The slab ranges of the batch being dispatched (see InBatchSlab).
  std::vector<std::pair<const uint8_t*, const uint8_t*>> live_views;
  // Slab bytes in use (not spare), their lowest since the last collection
  // we asked for, when we asked, and how often (see MaybeCollect).
  size_t slab_bytes = 0;
  size_t slab_low = 0;
  bool slab_freed = false;     // a slab came back since the last look
  uint64_t slab_freed_ms = 0;  // when one last did
  uint64_t gc_asked_ms = 0;
  uint64_t gc_asks = 0;
  // Servers whose broker is being attached on a worker thread (see
  // SetBroker): their wh_server must outlive the call, so a close asked for
  // meanwhile waits here (id -> timeout) until the worker is done.
  std::unordered_map<uint32_t, int> broker_busy;
  std::unordered_map<uint32_t, int> close_after_broker;
  std::mutex workers_mu;
  std::condition_variable workers_cv;
  int workers = 0;  // SetBroker calls running on worker threads
  bool stopping = false;  // Cleanup: workers stop waiting for the loop
};

State* g = nullptr;

uint32_t IdOf(void* user_data) { return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(user_data)); }
void* AsUserData(uint32_t id) { return reinterpret_cast<void*>(static_cast<uintptr_t>(id)); }

void Check(Napi::Env env) {
  if (!g || !g->hub) throw Napi::Error::New(env, "wirehub: native hub is not initialised");
}

// A view of JS data to send: Buffer/TypedArray/DataView/ArrayBuffer are used in
// place (the engine copies while framing); strings are encoded once.
struct Bytes {
  const void* data = nullptr;
  size_t len = 0;
};

Bytes GetBytes(const Napi::Value& v) {
  Bytes b;
  if (v.IsUndefined() || v.IsNull()) return b;
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    auto ab = ta.ArrayBuffer();
    b.data = static_cast<const uint8_t*>(ab.Data()) + ta.ByteOffset();
    b.len = ta.ByteLength();
  } else if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    b.data = ab.Data();
    b.len = ab.ByteLength();
  } else if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    b.data = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    b.len = dv.ByteLength();
  } else if (v.IsString()) {
    napi_env env = v.Env();
    size_t n = 0;
    napi_get_value_string_utf8(env, v, nullptr, 0, &n);
    g->scratch.resize(n + 1);
    napi_get_value_string_utf8(env, v, &g->scratch[0], n + 1, &n);
    b.data = g->scratch.data();
    b.len = n;
  } else {
    throw Napi::TypeError::New(v.Env(), "data must be a string, Buffer, TypedArray, DataView or ArrayBuffer");
  }
  return b;
}

std::string OptString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}
bool HasString(const Napi::Object& o, const char* key) { return o.Get(key).IsString(); }
int64_t OptInt(const Napi::Object& o, const char* key, int64_t def = 0) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : def;
}

void UpdateRef() {
  if (!g->poll_started) return;
  if (g->refs > 0) uv_ref(reinterpret_cast<uv_handle_t*>(&g->poll));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&g->poll));
}

std::string Str(const char* s) { return s ? std::string(s) : std::string(); }

// Drains up to a few batches per wakeup so one flood cannot starve the rest
// of the loop. Returns true when it stopped there with events possibly left
// in the queue: in host mode the hub's fd is the engine's epoll set, which
// is not readable for those, so an idle handle brings us back on the loop's
// next turn, after the other handles' I/O, timers and immediates. Without
// it, a flood's backlog (up to 16,384 events, 4 rounds of these) waited for
// the engine's 50 ms sweep timer to wake the fd, and so did every event
// queued behind it: an empty-frame flood put the probe's p99 at 200 ms.
bool Drain();

void SetMore(bool more) {
  if (more == g->more_started) return;
  g->more_started = more;
  if (more) uv_idle_start(&g->more, [](uv_idle_t*) {
      if (!g || !g->hub) return;
      bool again = false;
      try {
        again = Drain();
      } catch (...) {
      }
      SetMore(again);
    });
  else uv_idle_stop(&g->more);
}

void OnReadable(uv_poll_t*, int status, int) {
  if (status < 0 || !g || !g->hub) return;
  bool more = false;
  try {
    more = Drain();
  } catch (...) {
    // Never std::terminate from a uv callback: JS may be unable to run
    // (environment shutting down); the events of this batch are dropped.
  }
  SetMore(more);
}

// Large message payloads skip the hub's queue: the engine copies each one
// straight into a slab of ours (wh_hub_set_payload_alloc) and JS gets views
// of it, one external Buffer per slab and batch. One copy per message instead
// of two (into the queue, then into the batch's Buffer), which at 16 KiB was
// a fifth of an echo's time. A slab is reused or freed once no allocation in
// it is pending and V8 collected every Buffer over it; slabs stay small so a
// message an application keeps pins little else.
//
// Slabs are also what a batch's small payloads go to when they add up past
// malloc's mmap threshold: a fresh Buffer per batch was mapped, faulted in
// page by page and unmapped again (a third of the time of a 16 KiB echo,
// before large payloads had slabs of their own). Reporting slabs to V8 as
// external memory made it run major GCs: slower.
//
// V8 does not see slab memory, so it does not collect for it: a Buffer over
// a slab dies young but is only found dead at the next scavenge, which a
// server that allocates little JS per message runs rarely. 2000 connections
// sending one 40 KB message each left up to 23 MB of slabs waiting for a GC
// (a 20 KB per connection RSS peak, where the engine itself holds < 8 KB).
// So the addon bounds that garbage itself (MaybeCollect): past kGcBudget
// bytes of slabs in use above what the last collection left, it asks V8
// for a collection, unless V8 has collected some in the last kGcGapMs on
// its own (a fast stream of messages: its garbage goes at the pace of its
// scavenges, and a major GC every kGcGapMs cost an echo of 16 KiB messages
// 15% of its throughput). What the application keeps
// raises the baseline, so kept messages cost one collection per kGcBudget
// of new ones, never one per turn.
constexpr size_t kLargePayload = 4096;
constexpr size_t kSlabSize = 256 * 1024;
constexpr size_t kSpareSlabSet = 8;
constexpr size_t kSpareSlabMax = 1 << 20;  // bigger ones are freed, not kept

struct Slab {
  uint8_t* p;
  size_t cap;
  size_t used;
  int refs;  // pending allocations + Buffers over it + 1 while being filled
};

void UnrefSlab(Slab* s) {
  if (--s->refs > 0) return;
  if (g) {
    g->slab_bytes -= s->cap;
    if (g->slab_bytes < g->slab_low) g->slab_low = g->slab_bytes;
    g->slab_freed = true;
    if (s->cap <= kSpareSlabMax && g->spare.size() < kSpareSlabSet) {
      g->spare.push_back(s);
      return;
    }
  }
  std::free(s->p);
  delete s;
}

// A slab of at least `need` bytes: a spare one, else kSlabSize or the next
// power of two above it.
Slab* NewSlab(size_t need) {
  auto& spare = g->spare;
  for (size_t i = spare.size(); i-- > 0;) {
    if (spare[i]->cap >= need) {
      Slab* s = spare[i];
      spare[i] = spare.back();
      spare.pop_back();
      s->used = 0;
      s->refs = 1;
      g->slab_bytes += s->cap;
      return s;
    }
  }
  size_t cap = kSlabSize;
  while (cap < need) cap *= 2;
  auto* p = static_cast<uint8_t*>(std::malloc(cap));
  if (!p) return nullptr;
  g->slab_bytes += cap;
  return new Slab{p, cap, 0, 1};
}

constexpr size_t kGcBudget = 4u << 20;
constexpr uint64_t kGcGapMs = 100;
// How much external memory to report for a moment: more than V8's soft
// limit (64 MiB above what it saw at its last mark-compact), so that it
// starts collecting, and far below its hard limit (a synchronous full GC).
constexpr int64_t kGcNudge = int64_t(128) << 20;

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// After a batch: if the slabs in use grew kGcBudget past the lowest they
// were since our last request, ask V8 for a collection (N-API has no call
// for one: reporting external memory over V8's limit starts one, and the
// report is withdrawn at once). Only when V8 has freed none of our slabs
// for kGcGapMs, nor been asked in that time.
void MaybeCollect(napi_env env) {
  if (g->slab_freed) {
    g->slab_freed = false;
    g->slab_freed_ms = NowMs();
  }
  if (g->slab_bytes <= g->slab_low + kGcBudget) return;
  const uint64_t now = NowMs();
  if (now - g->gc_asked_ms < kGcGapMs || now - g->slab_freed_ms < kGcGapMs) return;
  g->gc_asked_ms = now;
  g->slab_low = g->slab_bytes;
  ++g->gc_asks;
  int64_t total = 0;
  napi_adjust_external_memory(env, kGcNudge, &total);
  napi_adjust_external_memory(env, -kGcNudge, &total);
}

void* AllocPayload(size_t len, void*) {
  const size_t need = (len + 63) & ~size_t(63);  // cache-line aligned starts
  Slab* s = g->slab;
  if (!s || s->cap - s->used < need) {
    if (need > kSlabSize) {  // its own block, never the one being filled
      Slab* own = NewSlab(len);
      if (!own) return nullptr;  // the engine keeps it in its queue
      own->used = len;
      g->pending.emplace_back(own, own->p);
      return own->p;
    }
    if (s) UnrefSlab(s);
    s = g->slab = NewSlab(kSlabSize);
    if (!s) return nullptr;
  }
  uint8_t* at = s->p + s->used;
  s->used += need;
  ++s->refs;
  g->pending.emplace_back(s, at);
  return at;
}

void FinalizeSlabView(Napi::Env, uint8_t*, Slab* s) { UnrefSlab(s); }

// The Buffer for a batch's small payloads, back to back.
constexpr size_t kSlabMin = 128 * 1024;
Napi::Buffer<uint8_t> PayloadBuffer(Napi::Env env, size_t total) {
  if (total < kSlabMin) return Napi::Buffer<uint8_t>::New(env, total ? total : 1);
  Slab* s = NewSlab(total);
  if (!s) throw std::bad_alloc();
  s->used = total;  // its one reference is the Buffer's
  return Napi::Buffer<uint8_t>::New(env, s->p, total, FinalizeSlabView, s);
}

// Is d the next pending allocation? Allocations come in the order of their
// events, except one the engine made for a message it then refused (invalid
// UTF-8, say): those are dropped here.
bool InPending(const uint8_t* d) {
  auto& q = g->pending;
  size_t k = 0;
  while (k < q.size() && q[k].second != d) ++k;
  if (k == q.size()) return false;  // allocation failed: the payload is in the hub
  for (size_t i = 0; i < k; ++i) {
    UnrefSlab(q.front().first);
    q.pop_front();
  }
  return true;
}

// Hands JS one batch (n <= kBatch events of the last poll, in order) with
// one call.
void Dispatch(napi_env raw, const wh_event* evs, int n) {
  Napi::Env env(raw);
  struct View {
    Slab* slab;
    const uint8_t* start;
    const uint8_t* end;
    int count;
  };
  std::vector<View> views;
  int16_t view_of[kBatch];
  {
    Napi::HandleScope scope(env);
    // Which payloads sit in our slabs (grouped per slab), which in the hub.
    views.clear();
    size_t total = 0;
    for (int i = 0; i < n; ++i) {
      const wh_event& ev = evs[i];
      const auto* d = reinterpret_cast<const uint8_t*>(ev.data);
      view_of[i] = 0;
      if (ev.type == WH_EV_MESSAGE && ev.len >= kLargePayload && InPending(d)) {
        Slab* s = g->pending.front().first;
        g->pending.pop_front();
        if (views.empty() || views.back().slab != s) views.push_back(View{s, d, d + ev.len, 0});
        View& v = views.back();
        if (d + ev.len > v.end) v.end = d + ev.len;
        ++v.count;
        view_of[i] = static_cast<int16_t>(views.size());
      } else {
        total += ev.len;
      }
    }
    Napi::Array blocks;
    if (!views.empty()) {
      blocks = Napi::Array::New(env, views.size());
      for (size_t k = 0; k < views.size(); ++k) {
        View& v = views[k];
        // The Buffer holds one reference; the pending allocations it covers
        // held one each.
        v.slab->refs += 1 - v.count;
        blocks.Set(static_cast<uint32_t>(k),
                   Napi::Buffer<uint8_t>::New(env, const_cast<uint8_t*>(v.start), static_cast<size_t>(v.end - v.start),
                                              FinalizeSlabView, v.slab));
      }
    }
    Napi::Buffer<uint8_t> payload = PayloadBuffer(env, total);
    uint8_t* out = payload.Data();
    Napi::Int32Array meta = g->meta.Value();
    int32_t* m = meta.Data();
    Napi::Array extras;
    bool have_extras = false;
    size_t off = 0;
    for (int i = 0; i < n; ++i) {
      const wh_event& ev = evs[i];
      int32_t* f = m + i * kFields;
      f[0] = ev.type;
      f[1] = static_cast<int32_t>(IdOf(ev.user_data));
      f[2] = ev.flags;
      f[3] = ev.code;
      f[4] = ev.error;
      f[5] = ev.status;
      f[7] = static_cast<int32_t>(ev.len);
      f[8] = view_of[i];
      // A server conn's handle first appears in its WH_EV_OPEN event.
      if (ev.type == WH_EV_OPEN && ev.conn) g->conns.set(IdOf(ev.user_data), ev.conn);
      if (view_of[i]) {
        f[6] = static_cast<int32_t>(reinterpret_cast<const uint8_t*>(ev.data) - views[view_of[i] - 1].start);
      } else {
        f[6] = static_cast<int32_t>(off);
        if (ev.len) {
          std::memcpy(out + off, ev.data, ev.len);
          off += ev.len;
        }
      }
      if ((ev.type == WH_EV_UPGRADE || ev.type == WH_EV_HTTP) && ev.request) {
        if (!have_extras) {
          extras = Napi::Array::New(env);
          have_extras = true;
        }
        wh_request* rq = ev.request;
        uint32_t rid = g->requests.add(rq);
        size_t hl = 0;
        const char* hs = wh_request_headers(rq, &hl);
        Napi::Array x = Napi::Array::New(env, 9);
        x.Set(0u, Napi::Number::New(env, rid));
        x.Set(1u, Napi::String::New(env, Str(wh_request_method(rq))));
        x.Set(2u, Napi::String::New(env, Str(wh_request_target(rq))));
        x.Set(3u, Napi::String::New(env, hs ? std::string(hs, hl) : std::string()));
        x.Set(4u, Napi::String::New(env, Str(wh_request_remote_address(rq))));
        x.Set(5u, Napi::Number::New(env, wh_request_remote_port(rq)));
        x.Set(6u, Napi::String::New(env, Str(wh_request_local_address(rq))));
        x.Set(7u, Napi::Number::New(env, wh_request_local_port(rq)));
        x.Set(8u, Napi::Number::New(env, i));
        extras.Set(extras.Length(), x);
      } else if ((ev.type == WH_EV_CLOSE || ev.type == WH_EV_OPEN) && ev.headers_len) {
        // A client's handshake response headers: refused (CLOSE) or 101 (OPEN).
        if (!have_extras) {
          extras = Napi::Array::New(env);
          have_extras = true;
        }
        Napi::Array x = Napi::Array::New(env, 4);
        x.Set(0u, Napi::Number::New(env, -1));
        x.Set(1u, Napi::String::New(env, std::string(ev.headers, ev.headers_len)));
        // The reason phrase as sent: ws shows Node's parse of it (statusMessage).
        x.Set(2u, ev.status_text ? Napi::String::New(env, ev.status_text, ev.status_text_len) : env.Undefined());
        x.Set(3u, Napi::Number::New(env, i));
        extras.Set(extras.Length(), x);
      }
    }
    napi_value argv[4] = {Napi::Number::New(env, n), payload,
                          have_extras ? static_cast<napi_value>(extras) : env.Undefined(),
                          views.empty() ? env.Undefined() : static_cast<napi_value>(blocks)};
    // MakeCallback: process.nextTick queues and promise jobs run after the
    // batch, as they do after any native I/O callback in Node.
    // Replies made while JS handles the batch (ws.send in 'message') leave
    // at the uncork, one write per connection.
    wh_hub_cork(g->hub);
    g->live_views.clear();
    for (const View& v : views) g->live_views.emplace_back(v.start, v.end);
    try {
      g->dispatch.MakeCallback(env.Global(), 4, argv, *g->async_ctx);
      g->live_views.clear();
      wh_hub_uncork(g->hub);
    } catch (const Napi::Error& e) {
      g->live_views.clear();
      wh_hub_uncork(g->hub);
      // A listener's exception (rethrown by the dispatcher after the batch):
      // report it as Node reports any uncaught exception from an I/O
      // callback ('uncaughtException', else exit), never std::terminate.
      napi_fatal_exception(raw, e.Value());
    }
    // A conn handle is valid until the next poll: the slots of closed conns
    // and servers are freed only now, after JS handled their last event.
    for (int i = 0; i < n; ++i) {
      const wh_event& ev = evs[i];
      if (ev.type == WH_EV_CLOSE) g->conns.remove(IdOf(ev.user_data));
      else if (ev.type == WH_EV_SERVER_CLOSED) g->servers.remove(IdOf(ev.user_data));
    }
    if (env.IsExceptionPending()) {
      // Should not happen (the JS dispatcher reports listener errors itself);
      // never let it abort the process from a uv callback.
      Napi::Error e = env.GetAndClearPendingException();
      (void)e;
    }
  }
}

// Up to kRounds polls per wakeup, kPoll events each, handed to JS kBatch at
// a time. A poll also runs an engine turn, which reads up to 4096 events
// from a busy connection, twice when the socket's edge and the turn's own
// continuation both come: taking at least as many per poll keeps the
// engine's backlog (capped at 16,384 events, 120 bytes each, in two
// vectors that keep their size) from filling under a flood, where 512 a
// poll let it grow by up to 7680 a turn, and every other connection's
// events waited behind it (a probe's p99 of 56 ms at 4096 a poll, 12-18 ms
// at 8192).
bool Drain() {
  napi_env raw = g->env;
  for (int round = 0; round < kRounds; ++round) {
    const int polled = wh_hub_poll(g->hub, g->events, kPoll);
    if (polled <= 0) return false;
    // PONG events of connections that do not want them never reach JS: a
    // flood of empty pongs then costs no object each (see PongEvents).
    int n = 0;
    for (int i = 0; i < polled; ++i) {
      const wh_event& ev = g->events[i];
      if (ev.type == WH_EV_PONG && ev.conn && !g->conns.wants_pong(IdOf(ev.user_data))) continue;
      if (n != i) g->events[n] = ev;
      ++n;
    }
    for (int off = 0; off < n; off += kBatch) Dispatch(raw, g->events + off, std::min(kBatch, n - off));
    MaybeCollect(raw);
    if (polled < kPoll) return false;
  }
  return true;
}

void Cleanup(void*) {
  if (!g) return;
  {
    // A broker still being attached uses the hub: let it finish first
    // (bounded by its connect timeout).
    std::unique_lock<std::mutex> lk(g->workers_mu);
    g->stopping = true;
    g->workers_cv.notify_all();
    g->workers_cv.wait(lk, [] { return g->workers == 0; });
  }
  if (g->poll_started) uv_poll_stop(&g->poll);
  if (g->more_started) uv_idle_stop(&g->more);
  g->more_started = false;
  if (g->hub) wh_hub_destroy(g->hub, 1);
  g->hub = nullptr;
  // g itself is leaked on purpose: the uv handle may still be referenced by
  // the loop until it closes, and the process is ending.
}

// init(dispatch, metaInt32Array)
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g && g->hub) return env.Undefined();
  if (!info[0].IsFunction() || !info[1].IsTypedArray())
    throw Napi::TypeError::New(env, "init(dispatch, meta)");
  auto meta = info[1].As<Napi::Int32Array>();
  if (meta.ElementLength() < static_cast<size_t>(kBatch * kFields))
    throw Napi::RangeError::New(env, "meta array too small");
  g = new State();
  g->env = env;
  g->dispatch = Napi::Persistent(info[0].As<Napi::Function>());
  g->meta = Napi::Persistent(meta);
  g->async_ctx.reset(new Napi::AsyncContext(env, "wirehub"));
  wh_hub_options ho;
  std::memset(&ho, 0, sizeof ho);
  ho.size = sizeof ho;
  ho.event_mode = WH_EVENTS_HOST;
  int rc = wh_hub_create(&ho, &g->hub);
  if (rc < 0) throw Napi::Error::New(env, std::string("wirehub: hub: ") + wh_strerror(rc));
  wh_hub_set_payload_alloc(g->hub, kLargePayload, AllocPayload, nullptr);
  int fd = -1;
  wh_hub_event_fd(g->hub, &fd);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &g->poll, fd);
  uv_poll_start(&g->poll, UV_READABLE, OnReadable);
  g->poll_started = true;
  uv_idle_init(loop, &g->more);
  // Never what keeps the process alive: the poll handle's ref decides that.
  uv_unref(reinterpret_cast<uv_handle_t*>(&g->more));
  UpdateRef();
  napi_add_env_cleanup_hook(env, Cleanup, nullptr);
  return Napi::Number::New(env, kBatch);
}

// ref(delta): JS counts what should keep the process alive (listening
// servers, open or connecting conns); the poll handle is ref'd while > 0.
Napi::Value Ref(const Napi::CallbackInfo& info) {
  Check(info.Env());
  g->refs += info[0].As<Napi::Number>().Int32Value();
  if (g->refs < 0) g->refs = 0;
  UpdateRef();
  return info.Env().Undefined();
}

void FillDeflate(const Napi::Object& o, wh_deflate_options* d) {
  Napi::Value v = o.Get("deflate");
  if (!v.IsObject()) return;
  auto x = v.As<Napi::Object>();
  d->enabled = 1;
  d->server_no_context_takeover = static_cast<int>(OptInt(x, "serverNoContextTakeover"));
  d->client_no_context_takeover = static_cast<int>(OptInt(x, "clientNoContextTakeover"));
  d->server_max_window_bits = static_cast<int>(OptInt(x, "serverMaxWindowBits"));
  d->client_max_window_bits = static_cast<int>(OptInt(x, "clientMaxWindowBits"));
  d->level = static_cast<int>(OptInt(x, "level"));
  d->mem_level = static_cast<int>(OptInt(x, "memLevel"));
  d->threshold = static_cast<size_t>(OptInt(x, "threshold"));
}

// maxBufferedChunks in the engine's terms: 0 = 1048576, -1 (SIZE_MAX) = none.
size_t BufferedChunks(const Napi::Object& o) {
  const int64_t n = OptInt(o, "maxBufferedChunks");
  return n < 0 ? SIZE_MAX : static_cast<size_t>(n);
}

void FillLimits(const Napi::Object& o, wh_limits* l) {
  l->max_message_size = static_cast<size_t>(OptInt(o, "maxPayload"));
  l->handshake_timeout_ms = static_cast<int>(OptInt(o, "handshakeTimeout"));
  l->close_timeout_ms = static_cast<int>(OptInt(o, "closeTimeout"));
  l->high_water = static_cast<size_t>(OptInt(o, "highWater"));
  l->max_buffered = static_cast<size_t>(OptInt(o, "maxBuffered"));
}

// listen({host, port, backlog, flags, subprotocols, maxPayload, deflate,
//         cert, key, maxConnections, maxHandshakes, idleTimeout,
//         messageTimeout, maxMemory}) -> [serverId, port] or a negative code.
// The hardening limits come in the engine's terms (lib/native.js checked
// them): 0 = default, -1 = off; maxMemory -1 = SIZE_MAX.
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  auto o = info[0].As<Napi::Object>();
  std::string host = OptString(o, "host"), protos = OptString(o, "subprotocols");
  std::string cert = OptString(o, "cert"), key = OptString(o, "key");
  wh_server_options so;
  std::memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.host = HasString(o, "host") ? host.c_str() : nullptr;
  so.port = static_cast<int>(OptInt(o, "port"));
  so.backlog = static_cast<int>(OptInt(o, "backlog"));
  so.flags = static_cast<int>(OptInt(o, "flags"));
  so.subprotocols = protos.empty() ? nullptr : protos.c_str();
  so.max_connections = static_cast<int>(OptInt(o, "maxConnections"));
  so.max_handshakes = static_cast<int>(OptInt(o, "maxHandshakes"));
  so.idle_timeout_ms = static_cast<int>(OptInt(o, "idleTimeout"));
  so.message_timeout_ms = static_cast<int>(OptInt(o, "messageTimeout"));
  const int64_t mem = OptInt(o, "maxMemory");
  so.max_memory = mem < 0 ? SIZE_MAX : static_cast<size_t>(mem);
  so.max_fragments = static_cast<int>(OptInt(o, "maxFragments"));  // 0 = 131072, -1 = none
  so.max_buffered_chunks = BufferedChunks(o);
  FillLimits(o, &so.limits);
  FillDeflate(o, &so.deflate);
  if (!cert.empty()) {
    so.tls.cert_file = cert.c_str();
    so.tls.key_file = key.c_str();
  }
  uint32_t id = g->servers.add(nullptr);
  so.user_data = AsUserData(id);
  wh_server* s = nullptr;
  int rc = wh_server_listen(g->hub, &so, &s);
  if (rc < 0) {
    g->servers.remove(id);
    return Napi::Number::New(env, rc);
  }
  g->servers.set(id, s);
  auto r = Napi::Array::New(env, 2);
  r.Set(0u, Napi::Number::New(env, id));
  r.Set(1u, Napi::Number::New(env, wh_server_port(s)));
  return r;
}

wh_server* ServerArg(const Napi::CallbackInfo& info, int i) {
  return g ? g->servers.get(info[i].As<Napi::Number>().Uint32Value()) : nullptr;
}
wh_conn* ConnArg(const Napi::CallbackInfo& info, int i) {
  return g ? g->conns.get(info[i].As<Napi::Number>().Uint32Value()) : nullptr;
}

Napi::Value ServerClose(const Napi::CallbackInfo& info) {
  wh_server* s = ServerArg(info, 0);
  if (!s) return Napi::Number::New(info.Env(), WH_ESTATE);
  const int timeout = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (g->broker_busy.count(id)) {
    // closed once the broker call returns (BrokerWorker), as if now
    if (timeout < 0) return Napi::Number::New(info.Env(), WH_EINVAL);
    g->close_after_broker[id] = timeout;
    return Napi::Number::New(info.Env(), 0);
  }
  return Napi::Number::New(info.Env(), wh_server_close(s, timeout));
}

Napi::Value ServerUnlisten(const Napi::CallbackInfo& info) {
  wh_server* s = ServerArg(info, 0);
  if (!s) return Napi::Number::New(info.Env(), WH_ESTATE);
  return Napi::Number::New(info.Env(), wh_server_unlisten(s));
}

Napi::Value ServerConnections(const Napi::CallbackInfo& info) {
  wh_server* s = ServerArg(info, 0);
  return Napi::Number::New(info.Env(), s ? wh_server_connections(s) : 0);
}

// adopt(serverId, fd, head, remoteAddress, remotePort)
Napi::Value Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  wh_server* s = ServerArg(info, 0);
  int fd = info[1].As<Napi::Number>().Int32Value();
  if (!s) {
    if (fd >= 0) close(fd);
    return Napi::Number::New(env, WH_ESTATE);
  }
  Bytes head = GetBytes(info[2]);
  std::string addr = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
  int port = info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : 0;
  return Napi::Number::New(env, wh_server_adopt(s, fd, head.data, head.len,
                                                addr.empty() ? nullptr : addr.c_str(), port));
}

// clientAdopt(fd, {maxPayload, handshakeTimeout, deflate, idleTimeout,
//   messageTimeout, flags}, protocol, extensions, head) -> connId or negative
// code: a client whose handshake JS did through Node's http (an agent, a
// createConnection); the engine owns fd from here on, on every path.
Napi::Value ClientAdopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto o = info[1].As<Napi::Object>();
  std::string proto = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();
  std::string ext = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
  Bytes head = GetBytes(info[4]);
  wh_client_options co;
  std::memset(&co, 0, sizeof co);
  co.size = sizeof co;
  co.idle_timeout_ms = static_cast<int>(OptInt(o, "idleTimeout"));
  co.max_fragments = static_cast<int>(OptInt(o, "maxFragments"));
  co.max_buffered_chunks = BufferedChunks(o);
  co.message_timeout_ms = static_cast<int>(OptInt(o, "messageTimeout"));
  co.flags = static_cast<int>(OptInt(o, "flags"));
  FillLimits(o, &co.limits);
  FillDeflate(o, &co.deflate);
  uint32_t cid = g->conns.add(nullptr);
  co.user_data = AsUserData(cid);
  wh_conn* c = nullptr;
  int rc = wh_client_adopt(g->hub, fd, &co, proto.c_str(), ext.c_str(), head.data, head.len, &c);
  if (rc < 0) {
    g->conns.remove(cid);
    return Napi::Number::New(env, rc);
  }
  g->conns.set(cid, c);
  return Napi::Number::New(env, cid);
}

// dup(fd) -> a new descriptor (close-on-exec) for the same open socket, so the
// engine owns its own and Node can close its handle without a FIN.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  return Napi::Number::New(info.Env(), nfd < 0 ? -errno : nfd);
}

Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw Napi::Error::New(env, std::string("socketpair: ") + strerror(errno));
  auto r = Napi::Array::New(env, 2);
  r.Set(0u, Napi::Number::New(env, sv[0]));
  r.Set(1u, Napi::Number::New(env, sv[1]));
  return r;
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// publish(serverId, topic, data, flags, exceptConnId)
Napi::Value Publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  wh_server* s = ServerArg(info, 0);
  if (!s) return Napi::Number::New(env, WH_ESTATE);
  std::string topic = info[1].As<Napi::String>().Utf8Value();
  Bytes b = GetBytes(info[2]);
  wh_conn* except = info[4].IsNumber() ? ConnArg(info, 4) : nullptr;
  return Napi::Number::New(env, wh_server_publish(s, topic.c_str(), b.data, b.len,
                                                  info[3].As<Napi::Number>().Int32Value(), except));
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  wh_server* s = ServerArg(info, 0);
  if (!s) return Napi::Number::New(env, WH_ESTATE);
  Bytes b = GetBytes(info[1]);
  wh_conn* except = info[3].IsNumber() ? ConnArg(info, 3) : nullptr;
  return Napi::Number::New(env, wh_server_broadcast(s, b.data, b.len,
                                                    info[2].As<Napi::Number>().Int32Value(), except));
}

// setBroker(serverId, {url, prefix, caFile, insecure, connectTimeout,
// maxPending}, done): attaches a Redis broker; done(rc) runs on the JS thread
// with 0 or a negative WH_E* code.
//
// wh_server_set_broker() blocks until Redis answers PING, up to the connect
// timeout (5 s by default). In host mode the JS thread may make that call,
// but it is also the engine's only I/O thread: for as long as it waits no
// socket of the process is read or written and no timer fires. A local
// Redis answers in a millisecond; one that drops packets, a slow DNS name or
// a TLS handshake across a WAN would freeze every connection for up to the
// timeout. So the call runs on a libuv worker thread (not an I/O thread of
// the hub, as the C ABI requires; its check uses an io_context of its own,
// then posts the start to the hub's loop, which wakes our poll handle). The
// server stays alive meanwhile: a close waits for the worker (ServerClose),
// and so does the environment's cleanup (Cleanup).
class BrokerWorker : public Napi::AsyncWorker {
 public:
  BrokerWorker(Napi::Function done, uint32_t id, wh_server* s, const Napi::Object& o)
      : Napi::AsyncWorker(done, "wirehub:broker"), id_(id), s_(s) {
    url_ = OptString(o, "url");
    prefix_ = OptString(o, "prefix");
    has_prefix_ = HasString(o, "prefix");
    ca_ = OptString(o, "caFile");
    std::memset(&opts_, 0, sizeof opts_);
    opts_.size = sizeof opts_;
    opts_.insecure = o.Get("insecure").ToBoolean() ? 1 : 0;
    opts_.connect_timeout_ms = static_cast<int>(OptInt(o, "connectTimeout"));
    opts_.max_pending = static_cast<size_t>(OptInt(o, "maxPending"));
  }

  void Execute() override {
    opts_.url = url_.c_str();
    opts_.prefix = has_prefix_ ? prefix_.c_str() : nullptr;
    opts_.ca_file = ca_.empty() ? nullptr : ca_.c_str();
    rc_ = wh_server_set_broker(s_, &opts_);
    if (rc_ == 0) WaitConnected();
    Done();
  }

  void OnOK() override { Finish(); }
  void OnError(const Napi::Error&) override { Finish(); }

  // Counted from the JS thread, before Queue(), so Cleanup never misses one.
  static void Started() {
    std::lock_guard<std::mutex> lk(g->workers_mu);
    ++g->workers;
  }

 private:
  // wh_server_set_broker() returns once Redis answered its check; the
  // connection the broker keeps is then made on the hub's loop (the JS
  // thread, free meanwhile). Publishes made before it is up wait for it
  // (within brokerMaxPending), but subscriptions reach Redis only then. So
  // done() waits here until it is, for up to the connect timeout more:
  // 'listening' then means that this node reaches the others, and they it.
  void WaitConnected() {
    const int timeout = opts_.connect_timeout_ms > 0 ? opts_.connect_timeout_ms : 5000;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
      wh_broker_stats st;
      std::memset(&st, 0, sizeof st);
      st.size = sizeof st;
      if (wh_server_broker_stats(s_, &st) < 0 || st.connected) return;
      {
        std::unique_lock<std::mutex> lk(g->workers_mu);
        if (g->workers_cv.wait_for(lk, std::chrono::milliseconds(1), [] { return g->stopping; })) return;
      }
      struct timespec t;
      clock_gettime(CLOCK_MONOTONIC, &t);
      if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= timeout) return;
    }
  }

  void Done() {
    std::lock_guard<std::mutex> lk(g->workers_mu);
    --g->workers;
    g->workers_cv.notify_all();
  }

  void Finish() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    g->broker_busy.erase(id_);
    auto it = g->close_after_broker.find(id_);
    if (it != g->close_after_broker.end()) {
      const int timeout = it->second;
      g->close_after_broker.erase(it);
      wh_server_close(s_, timeout);
    }
    Callback().Call({Napi::Number::New(env, rc_)});
  }

  uint32_t id_;
  wh_server* s_;
  std::string url_, prefix_, ca_;
  bool has_prefix_ = false;
  wh_broker_options opts_;
  int rc_ = 0;
};

Napi::Value SetBroker(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  wh_server* s = ServerArg(info, 0);
  if (!s) return Napi::Number::New(env, WH_ESTATE);
  if (!info[1].IsObject() || !info[2].IsFunction())
    throw Napi::TypeError::New(env, "setBroker(serverId, options, done)");
  const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (g->broker_busy.count(id)) return Napi::Number::New(env, WH_ESTATE);
  auto* w = new BrokerWorker(info[2].As<Napi::Function>(), id, s, info[1].As<Napi::Object>());
  g->broker_busy[id] = 1;
  BrokerWorker::Started();
  w->Queue();
  return Napi::Number::New(env, 0);
}

// brokerStats(serverId) -> [connected, channels, published, received,
// dropped, malformed, reconnects], or a negative code (WH_ESTATE: no broker).
Napi::Value BrokerStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  wh_server* s = ServerArg(info, 0);
  if (!s) return Napi::Number::New(env, WH_ESTATE);
  wh_broker_stats st;
  std::memset(&st, 0, sizeof st);
  st.size = sizeof st;
  const int rc = wh_server_broker_stats(s, &st);
  if (rc < 0) return Napi::Number::New(env, rc);
  auto r = Napi::Array::New(env, 7);
  r.Set(0u, Napi::Number::New(env, st.connected));
  r.Set(1u, Napi::Number::New(env, st.channels));
  r.Set(2u, Napi::Number::New(env, static_cast<double>(st.published)));
  r.Set(3u, Napi::Number::New(env, static_cast<double>(st.received)));
  r.Set(4u, Napi::Number::New(env, static_cast<double>(st.dropped)));
  r.Set(5u, Napi::Number::New(env, static_cast<double>(st.malformed)));
  r.Set(6u, Napi::Number::New(env, static_cast<double>(st.reconnects)));
  return r;
}

// The request info[0] names, taken out of the table: a request is answered once.
wh_request* TakeRequest(const Napi::CallbackInfo& info) {
  uint32_t rid = info[0].As<Napi::Number>().Uint32Value();
  wh_request* rq = g->requests.get(rid);
  if (rq) g->requests.remove(rid);
  return rq;
}

// accept(requestId, protocol|null, headers|null) -> connId or negative code
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  wh_request* rq = TakeRequest(info);
  if (!rq) return Napi::Number::New(env, WH_ESTATE);
  std::string proto = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string();
  std::string hdrs = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();
  // The conn slot is reserved now and filled at WH_EV_OPEN (JS passes the
  // handle back through connOpened): the request names no conn yet.
  uint32_t cid = g->conns.add(nullptr);
  int rc = wh_request_accept(rq, info[1].IsString() ? proto.c_str() : nullptr,
                             hdrs.empty() ? nullptr : hdrs.c_str(), AsUserData(cid));
  if (rc < 0) {
    g->conns.remove(cid);
    return Napi::Number::New(env, rc);
  }
  return Napi::Number::New(env, cid);
}

// respond(requestId, status, headers|null, body)
Napi::Value Respond(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  wh_request* rq = TakeRequest(info);
  if (!rq) return Napi::Number::New(env, WH_ESTATE);
  std::string hdrs = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();
  Bytes b = GetBytes(info[3]);
  return Napi::Number::New(env, wh_request_respond(rq, info[1].As<Napi::Number>().Int32Value(),
                                                   hdrs.empty() ? nullptr : hdrs.c_str(), b.data, b.len));
}

// connect(url, {protocols, headers, origin, maxPayload, handshakeTimeout,
//               deflate, caFile, insecure, servername, idleTimeout,
//               messageTimeout}) -> connId or negative code
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  std::string url = info[0].As<Napi::String>().Utf8Value();
  auto o = info[1].As<Napi::Object>();
  std::string protos = OptString(o, "protocols"), hdrs = OptString(o, "headers"),
              origin = OptString(o, "origin"), ca = OptString(o, "caFile"),
              sni = OptString(o, "servername");
  wh_client_options co;
  std::memset(&co, 0, sizeof co);
  co.size = sizeof co;
  co.subprotocols = protos.empty() ? nullptr : protos.c_str();
  co.headers = hdrs.empty() ? nullptr : hdrs.c_str();
  co.origin = HasString(o, "origin") ? origin.c_str() : nullptr;
  co.idle_timeout_ms = static_cast<int>(OptInt(o, "idleTimeout"));
  co.max_fragments = static_cast<int>(OptInt(o, "maxFragments"));
  co.max_buffered_chunks = BufferedChunks(o);
  co.message_timeout_ms = static_cast<int>(OptInt(o, "messageTimeout"));
  co.flags = static_cast<int>(OptInt(o, "flags"));  // WH_CLIENT_*
  FillLimits(o, &co.limits);
  FillDeflate(o, &co.deflate);
  co.tls.ca_file = ca.empty() ? nullptr : ca.c_str();
  std::string cert = OptString(o, "certFile"), key = OptString(o, "keyFile"), ciphers = OptString(o, "ciphers");
  co.tls.cert_file = cert.empty() ? nullptr : cert.c_str();
  co.tls.key_file = key.empty() ? nullptr : key.c_str();
  co.tls_min_version = static_cast<int>(OptInt(o, "tlsMin"));
  co.tls_max_version = static_cast<int>(OptInt(o, "tlsMax"));
  co.tls_ciphers = ciphers.empty() ? nullptr : ciphers.c_str();
  co.tls.insecure = static_cast<int>(OptInt(o, "insecure"));
  co.tls.server_name = sni.empty() ? nullptr : sni.c_str();
  std::string hskey = OptString(o, "key");  // the one JS's ClientRequest shows
  co.key = hskey.empty() ? nullptr : hskey.c_str();
  uint32_t cid = g->conns.add(nullptr);
  co.user_data = AsUserData(cid);
  wh_conn* c = nullptr;
  int rc = wh_connect(g->hub, url.c_str(), &co, &c);
  if (rc < 0) {
    g->conns.remove(cid);
    return Napi::Number::New(env, rc);
  }
  g->conns.set(cid, c);
  return Napi::Number::New(env, cid);
}

// A message sent back out of the batch being dispatched (an echo, a relay)
// lies in a slab that the batch's Buffers keep alive until after the uncork:
// the engine may then write it from there (WH_BORROW) instead of copying it.
// As with a Buffer handed to socket.write(), changing it before the batch
// ends changes what is sent.
bool InBatchSlab(const void* data, size_t len) {
  if (len < kLargePayload) return false;
  const auto* p = static_cast<const uint8_t*>(data);
  for (const auto& v : g->live_views)
    if (p >= v.first && p + len <= v.second) return true;
  return false;
}

// ws's generateMask: `mask` (a 4-byte Buffer the user's function filled)
// keys the frame the call makes; the engine frames at once on this thread
// (host mode), and the key is forgotten after the call whatever it did.
// Without the argument nothing changes.
template <class F>
int WithMask(const Napi::CallbackInfo& info, size_t i, wh_conn* c, F&& call) {
  if (info.Length() <= i || !info[i].IsBuffer()) return call();
  auto m = info[i].As<Napi::Buffer<unsigned char>>();
  if (m.Length() < 4) return call();
  unsigned char key[4];
  std::memcpy(key, m.Data(), 4);
  const int rc = wh_conn_set_mask(c, key);
  if (rc < 0) return rc;
  const int out = call();
  wh_conn_set_mask(c, nullptr);
  return out;
}

// ws's generateMask for the frames the engine makes on its own for a
// client (WH_CLIENT_HOST_MASK: the answer to the server's close, a close
// after a protocol error): JS's maskFor(connId) returns the key. Called on
// Node's thread in the middle of the engine's work (host mode), so nothing
// but that function runs here.
void OnMask(wh_hub*, wh_conn* c, unsigned char key[4], void*) {
  if (!g || g->mask_fn.IsEmpty()) return;
  Napi::Env env(g->env);
  Napi::HandleScope scope(env);
  try {
    Napi::Value v = g->mask_fn.Call({Napi::Number::New(env, IdOf(wh_conn_user_data(c)))});
    if (v.IsBuffer()) {
      auto b = v.As<Napi::Buffer<unsigned char>>();
      if (b.Length() >= 4) std::memcpy(key, b.Data(), 4);
    }
  } catch (const Napi::Error& e) {
    // generateMask threw: uncaught, as it is from ws's sender
    napi_fatal_exception(g->env, e.Value());
  }
}

// setMaskSource(maskFor)
Napi::Value SetMaskSource(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  g->mask_fn = Napi::Persistent(info[0].As<Napi::Function>());
  return Napi::Number::New(env, wh_hub_set_mask_cb(g->hub, OnMask, nullptr));
}

// send(connId, data, flags[, mask])
Napi::Value Send(const Napi::CallbackInfo& info) {
  wh_conn* c = ConnArg(info, 0);
  if (!c) return Napi::Number::New(info.Env(), WH_ECLOSED);
  Bytes b = GetBytes(info[1]);
  int flags = info[2].As<Napi::Number>().Int32Value() & ~WH_BORROW;
  if (InBatchSlab(b.data, b.len)) flags |= WH_BORROW;
  return Napi::Number::New(info.Env(), WithMask(info, 3, c, [&] { return wh_conn_send(c, b.data, b.len, flags); }));
}

Napi::Value Ping(const Napi::CallbackInfo& info) {
  wh_conn* c = ConnArg(info, 0);
  if (!c) return Napi::Number::New(info.Env(), WH_ECLOSED);
  Bytes b = GetBytes(info[1]);
  return Napi::Number::New(info.Env(), WithMask(info, 3, c, [&] {
    return info[2].ToBoolean() ? wh_conn_pong(c, b.data, b.len) : wh_conn_ping(c, b.data, b.len);
  }));
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  wh_conn* c = ConnArg(info, 0);
  if (!c) return Napi::Number::New(info.Env(), WH_ECLOSED);
  Bytes b = GetBytes(info[2]);
  return Napi::Number::New(info.Env(), WithMask(info, 3, c, [&] {
    return wh_conn_close(c, info[1].As<Napi::Number>().Int32Value(), static_cast<const char*>(b.data), b.len);
  }));
}

Napi::Value Terminate(const Napi::CallbackInfo& info) {
  wh_conn* c = ConnArg(info, 0);
  return Napi::Number::New(info.Env(), c ? wh_conn_terminate(c) : WH_ECLOSED);
}

// ws's bufferedAmount: ws writes each send to the socket at once, so right
// after a send it counts only what the socket did not take. Sends made while
// JS handles a batch wait for the batch's uncork here; asked for the amount,
// this connection writes them first and the answer means the same.
Napi::Value Buffered(const Napi::CallbackInfo& info) {
  wh_conn* c = ConnArg(info, 0);
  size_t n = 0;
  if (c) {
    wh_conn_flush(c);
    wh_conn_buffered(c, &n);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value PauseConn(const Napi::CallbackInfo& info) {
  wh_conn* c = ConnArg(info, 0);
  if (!c) return Napi::Number::New(info.Env(), WH_ECLOSED);
  return Napi::Number::New(info.Env(), info[1].ToBoolean() ? wh_conn_pause(c) : wh_conn_resume(c));
}

Napi::Value Subscribe(const Napi::CallbackInfo& info) {
  wh_conn* c = ConnArg(info, 0);
  if (!c) return Napi::Number::New(info.Env(), WH_ECLOSED);
  std::string topic = info[1].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), info[2].ToBoolean() ? wh_conn_subscribe(c, topic.c_str())
                                                            : wh_conn_unsubscribe(c, topic.c_str()));
}

// connInfo(id) -> [protocol, extensions, remoteAddress, remotePort,
//                  localAddress, localPort] or null
Napi::Value ConnInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  wh_conn* c = ConnArg(info, 0);
  if (!c) return env.Null();
  auto r = Napi::Array::New(env, 6);
  r.Set(0u, Napi::String::New(env, Str(wh_conn_subprotocol(c))));
  r.Set(1u, Napi::String::New(env, Str(wh_conn_extensions(c))));
  r.Set(2u, Napi::String::New(env, Str(wh_conn_remote_address(c))));
  r.Set(3u, Napi::Number::New(env, wh_conn_remote_port(c)));
  r.Set(4u, Napi::String::New(env, Str(wh_conn_local_address(c))));
  r.Set(5u, Napi::Number::New(env, wh_conn_local_port(c)));
  return r;
}

Napi::Value ErrName(const Napi::CallbackInfo& info) {
  int e = info[0].As<Napi::Number>().Int32Value();
  auto r = Napi::Array::New(info.Env(), 2);
  r.Set(0u, Napi::String::New(info.Env(), Str(wh_err_name(e))));
  r.Set(1u, Napi::String::New(info.Env(), Str(wh_strerror(e))));
  return r;
}

// pongEvents(connId, on): whether the connection's PONG events reach JS
// (on by default, and for every new connection). ws emits 'pong' to its
// listeners only: with none, JS can turn them off and a peer's flood of
// pongs is dropped here, before any object is made for it (an empty-frame
// flood of messages and pongs went through 1.5x faster without them).
Napi::Value PongEvents(const Napi::CallbackInfo& info) {
  if (g) {
    const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    if (id > 0 && id < g->conns.no_pong.size() && g->conns.used[id]) g->conns.no_pong[id] = !info[1].ToBoolean();
  }
  return info.Env().Undefined();
}

// memoryStats() -> [slab bytes in use, spare slab bytes, collections asked]:
// what the addon holds for JS outside V8's heap (tests, diagnostics).
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t spare = 0;
  if (g)
    for (const Slab* s : g->spare) spare += s->cap;
  auto r = Napi::Array::New(env, 3);
  r.Set(0u, Napi::Number::New(env, g ? static_cast<double>(g->slab_bytes) : 0));
  r.Set(1u, Napi::Number::New(env, static_cast<double>(spare)));
  r.Set(2u, Napi::Number::New(env, g ? static_cast<double>(g->gc_asks) : 0));
  return r;
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("ref", Napi::Function::New(env, Ref));
  exports.Set("listen", Napi::Function::New(env, Listen));
  exports.Set("serverClose", Napi::Function::New(env, ServerClose));
  exports.Set("serverUnlisten", Napi::Function::New(env, ServerUnlisten));
  exports.Set("serverConnections", Napi::Function::New(env, ServerConnections));
  exports.Set("adopt", Napi::Function::New(env, Adopt));
  exports.Set("clientAdopt", Napi::Function::New(env, ClientAdopt));
  exports.Set("dup", Napi::Function::New(env, Dup));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("publish", Napi::Function::New(env, Publish));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
  exports.Set("setBroker", Napi::Function::New(env, SetBroker));
  exports.Set("brokerStats", Napi::Function::New(env, BrokerStats));
  exports.Set("accept", Napi::Function::New(env, Accept));
  exports.Set("respond", Napi::Function::New(env, Respond));
  exports.Set("connect", Napi::Function::New(env, Connect));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("ping", Napi::Function::New(env, Ping));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("setMaskSource", Napi::Function::New(env, SetMaskSource));
  exports.Set("terminate", Napi::Function::New(env, Terminate));
  exports.Set("buffered", Napi::Function::New(env, Buffered));
  exports.Set("pause", Napi::Function::New(env, PauseConn));
  exports.Set("subscribe", Napi::Function::New(env, Subscribe));
  exports.Set("connInfo", Napi::Function::New(env, ConnInfo));
  exports.Set("errName", Napi::Function::New(env, ErrName));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats));
  exports.Set("pongEvents", Napi::Function::New(env, PongEvents));
  exports.Set("version", Napi::String::New(env, Str(wh_version_string())));
  exports.Set("BATCH", Napi::Number::New(env, kBatch));
  exports.Set("FIELDS", Napi::Number::New(env, kFields));
  return exports;
}

}  // namespace

NODE_API_MODULE(wirehub, Module)
