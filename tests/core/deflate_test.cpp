// deflate_test.cpp — permessage-deflate (RFC 7692) end to end: negotiation as
// seen through the C ABI, the WH_COMPRESSED flag, send flags, limits on the
// inflated size, and exact RSV1 rules checked with a raw client.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "connection.hpp"  // prepared_message::compressions, the publish test hook
#include "test_util.hpp"
#include "wirehub/permessage_deflate.hpp"

using namespace wht;

namespace {

class Deflate : public ::testing::Test {
 protected:
  void SetUp() override {
    wh_server_options o = server_options();
    o.deflate.enabled = 1;
    o.limits.max_message_size = 64 * 1024;
    start(o);
  }
  void TearDown() override { hub_.destroy(); }
  void start(const wh_server_options& o) {
    hub_.set_handler(echo_handler);
    server_ = hub_.listen(o);
    ASSERT_NE(server_, nullptr);
    port_ = wh_server_port(server_);
  }
  // A client with deflate offered (or not), opened.
  wh_conn* open_client(bool deflate) {
    wh_client_options o = client_options();
    o.deflate.enabled = deflate ? 1 : 0;
    wh_conn* c = nullptr;
    int rc = wh_connect(hub_.get(), ws_url(port_).c_str(), &o, &c);
    EXPECT_EQ(rc, 0) << wh_err_name(rc);
    if (rc != 0) return nullptr;
    auto first = hub_.rec().wait_event(0, c);
    EXPECT_TRUE(first.has_value());
    if (!first || first->type != WH_EV_OPEN) {
      ADD_FAILURE() << "client did not open\n" << hub_.rec().dump();
      return nullptr;
    }
    return c;
  }
  // The server-side conn (the only one with a server).
  wh_conn* server_conn() {
    wh_conn* found = nullptr;
    hub_.rec().wait_for([&](const std::vector<Event>& evs) {
      for (auto& e : evs)
        if (e.type == WH_EV_OPEN && e.server) {
          found = e.conn;
          return true;
        }
      return false;
    });
    return found;
  }
  // The n-th (0-based) server-side message.
  std::optional<Event> server_message(size_t n) {
    std::optional<Event> found;
    hub_.rec().wait_for([&](const std::vector<Event>& evs) {
      size_t i = 0;
      for (auto& e : evs)
        if (e.type == WH_EV_MESSAGE && e.server && i++ == n) {
          found = e;
          return true;
        }
      return false;
    });
    return found;
  }

  TestHub hub_;
  wh_server* server_ = nullptr;
  int port_ = 0;
};

}  // namespace

TEST_F(Deflate, ExtensionsShowTheNegotiatedValueOnBothSides) {
  wh_conn* c = open_client(true);
  ASSERT_NE(c, nullptr);
  wh_conn* s = server_conn();
  ASSERT_NE(s, nullptr);
  ASSERT_NE(wh_conn_extensions(c), nullptr);
  ASSERT_NE(wh_conn_extensions(s), nullptr);
  EXPECT_EQ(std::string(wh_conn_extensions(c)).rfind("permessage-deflate", 0), 0u) << wh_conn_extensions(c);
  EXPECT_EQ(std::string(wh_conn_extensions(s)).rfind("permessage-deflate", 0), 0u) << wh_conn_extensions(s);
  EXPECT_STREQ(wh_conn_extensions(c), wh_conn_extensions(s)) << "both sides agree on one value";
}

TEST_F(Deflate, LargeMessageArrivesCompressedBothWays) {
  wh_conn* c = open_client(true);
  ASSERT_NE(c, nullptr);
  std::string text = compressible_text(20000);
  ASSERT_GE(wh_conn_send(c, text.data(), text.size(), WH_TEXT), 0);
  auto in = server_message(0);
  ASSERT_TRUE(in.has_value()) << hub_.rec().dump();
  EXPECT_TRUE(in->flags & WH_COMPRESSED) << "flags=" << in->flags;
  EXPECT_TRUE(in->flags & WH_TEXT);
  EXPECT_TRUE(in->data == text);
  auto back = hub_.rec().wait_event(WH_EV_MESSAGE, c);  // the echo
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->flags & WH_COMPRESSED) << "flags=" << back->flags;
  EXPECT_TRUE(back->data == text);
}

TEST_F(Deflate, LargeCompressibleMessagesRoundTripRepeatedly) {
  wh_conn* c = open_client(true);
  ASSERT_NE(c, nullptr);
  // Several messages so context takeover (or its absence) is exercised.
  std::string base = compressible_text(60000);
  for (int i = 0; i < 5; ++i) {
    std::string m = base;
    m[static_cast<size_t>(i) * 1000] = 'X';
    ASSERT_GE(wh_conn_send(c, m.data(), m.size(), WH_BINARY), 0);
  }
  ASSERT_TRUE(hub_.rec().wait_count(WH_EV_MESSAGE, 5, c)) << hub_.rec().dump();
  auto msgs = hub_.rec().events(WH_EV_MESSAGE, c);
  for (int i = 0; i < 5; ++i) {
    std::string m = base;
    m[static_cast<size_t>(i) * 1000] = 'X';
    EXPECT_TRUE(msgs[static_cast<size_t>(i)].data == m) << "message " << i;
    EXPECT_TRUE(msgs[static_cast<size_t>(i)].flags & WH_BINARY);
  }
}

TEST_F(Deflate, SmallMessagesBelowThresholdAreNotCompressed) {
  wh_conn* c = open_client(true);
  ASSERT_NE(c, nullptr);
  ASSERT_GE(wh_conn_send(c, "tiny", 4, WH_TEXT), 0);
  auto in = server_message(0);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->flags & WH_COMPRESSED, 0) << "default threshold is 1024 bytes";
  EXPECT_EQ(in->data, "tiny");
}

TEST_F(Deflate, CompressFlagForcesCompressionBelowThreshold) {
  wh_conn* c = open_client(true);
  ASSERT_NE(c, nullptr);
  ASSERT_GE(wh_conn_send(c, "tiny tiny tiny", 14, WH_TEXT | WH_COMPRESS), 0);
  auto in = server_message(0);
  ASSERT_TRUE(in.has_value());
  EXPECT_TRUE(in->flags & WH_COMPRESSED);
  EXPECT_EQ(in->data, "tiny tiny tiny");
}

TEST_F(Deflate, NoCompressFlagSendsLargeMessageUncompressed) {
  wh_conn* c = open_client(true);
  ASSERT_NE(c, nullptr);
  std::string text = compressible_text(5000);
  ASSERT_GE(wh_conn_send(c, text.data(), text.size(), WH_TEXT | WH_NO_COMPRESS), 0);
  auto in = server_message(0);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->flags & WH_COMPRESSED, 0);
  EXPECT_TRUE(in->data == text);
}

TEST_F(Deflate, ClientWithoutDeflateGetsNoExtension) {
  wh_conn* c = open_client(false);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(wh_conn_extensions(c), nullptr);
  EXPECT_STREQ(wh_conn_extensions(c), "");
  std::string text = compressible_text(5000);
  ASSERT_GE(wh_conn_send(c, text.data(), text.size(), WH_TEXT | WH_COMPRESS), 0);
  auto in = server_message(0);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->flags & WH_COMPRESSED, 0) << "nothing may be compressed without the extension";
  EXPECT_TRUE(in->data == text);
}

TEST_F(Deflate, MaxMessageSizeAppliesToTheInflatedSize) {
  wh_conn* c = open_client(true);
  ASSERT_NE(c, nullptr);
  std::string zeros(1 << 20, '\0');  // 1 MiB inflated, ~1 KiB on the wire; max is 64 KiB
  ASSERT_GE(wh_conn_send(c, zeros.data(), zeros.size(), WH_BINARY), 0);
  auto e = hub_.rec().wait_event(WH_EV_CLOSE, c);
  ASSERT_TRUE(e.has_value()) << hub_.rec().dump();
  EXPECT_EQ(e->code, 1009) << hub_.rec().dump();
  ASSERT_TRUE(hub_.rec().wait_for([](const std::vector<Event>& evs) {
    for (auto& ev : evs)
      if (ev.type == WH_EV_CLOSE && ev.server) return true;
    return false;
  }));
  for (auto& ev : hub_.rec().events(WH_EV_CLOSE))
    if (ev.server) {
      EXPECT_EQ(ev.code, 1009);
      EXPECT_EQ(ev.error, WH_ETOOBIG) << wh_err_name(ev.error);
    }
  for (auto& ev : hub_.rec().events(WH_EV_MESSAGE)) EXPECT_NE(ev.server, server_) << "no message delivered";
}

TEST(DeflateOff, ServerWithoutDeflateIgnoresTheOffer) {
  TestHub hub;
  wh_server* s = hub.listen(server_options());
  ASSERT_NE(s, nullptr);
  RawClient c;
  ASSERT_TRUE(c.connect(wh_server_port(s)));
  HttpResponse r = c.upgrade("/", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
  EXPECT_EQ(r.status, 101);
  EXPECT_FALSE(r.has_header("Sec-WebSocket-Extensions")) << r.head;
}

// ------------------------------------------------------------- raw client
namespace {
class DeflateRaw : public Deflate {
 protected:
  void SetUp() override {
    Deflate::SetUp();
    ASSERT_TRUE(c_.connect(port_));
    HttpResponse r = c_.upgrade("/", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    ASSERT_EQ(r.status, 101) << r.head;
    auto ext = r.header("Sec-WebSocket-Extensions");
    ASSERT_TRUE(ext.has_value()) << r.head;
    ASSERT_EQ(ext->rfind("permessage-deflate", 0), 0u) << *ext;
    conn_ = hub_.rec().wait_server_conn(c_.local_port());
    ASSERT_NE(conn_, nullptr);
  }
  void TearDown() override {
    c_.close();
    Deflate::TearDown();
  }
  RawClient c_;
  wh_conn* conn_ = nullptr;
};
}  // namespace

TEST_F(DeflateRaw, CompressedFrameIsInflatedAndFlagged) {
  std::string text = compressible_text(3000);
  ASSERT_TRUE(c_.send_frame(OP_TEXT, pmd_compress(text), FrameOpts().with_rsv(RSV1)));
  auto m = hub_.rec().wait_event(WH_EV_MESSAGE, conn_);
  ASSERT_TRUE(m.has_value()) << hub_.rec().dump();
  EXPECT_TRUE(m->flags & WH_COMPRESSED);
  EXPECT_TRUE(m->data == text);
  // The echo comes back compressed (3000 >= threshold): RSV1 on the first frame.
  auto f = c_.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->rsv, RSV1);
  auto inflated = pmd_decompress(f->payload);
  ASSERT_TRUE(inflated.has_value());
  EXPECT_TRUE(*inflated == text);
}

TEST_F(DeflateRaw, CompressedMessageInFragmentsHasRsv1OnlyOnTheFirst) {
  std::string text = compressible_text(4000);
  std::string z = pmd_compress(text);
  ASSERT_GT(z.size(), 4u);
  size_t half = z.size() / 2;
  ASSERT_TRUE(c_.send_frame(OP_TEXT, z.substr(0, half), more().with_rsv(RSV1)));
  ASSERT_TRUE(c_.send_frame(OP_CONT, z.substr(half)));
  auto m = hub_.rec().wait_event(WH_EV_MESSAGE, conn_);
  ASSERT_TRUE(m.has_value()) << hub_.rec().dump();
  EXPECT_TRUE(m->data == text);
  EXPECT_TRUE(m->flags & WH_COMPRESSED);
}

TEST_F(DeflateRaw, Rsv1OnContinuationFrameFailsWith1002) {
  std::string z = pmd_compress(compressible_text(2000));
  ASSERT_TRUE(c_.send_frame(OP_TEXT, z.substr(0, 4), more().with_rsv(RSV1)));
  ASSERT_TRUE(c_.send_frame(OP_CONT, z.substr(4), FrameOpts().with_rsv(RSV1)));
  expect_failed_with(c_, 1002);
}

TEST_F(DeflateRaw, Rsv1OnControlFrameFailsWith1002) {
  ASSERT_TRUE(c_.send_frame(OP_PING, "p", FrameOpts().with_rsv(RSV1)));
  expect_failed_with(c_, 1002);
}

TEST_F(DeflateRaw, CorruptCompressedDataClosesTheConnection) {
  ASSERT_TRUE(c_.send_frame(OP_BINARY, std::string("\xFF\xFF\xFF\xFF\xFF\xFF", 6), FrameOpts().with_rsv(RSV1)));
  std::vector<Frame> others;
  auto f = c_.read_until_close(kTimeoutMs, &others);
  ASSERT_TRUE(f.has_value()) << "corrupt deflate data must fail the connection";
  EXPECT_TRUE(f->close_code() == 1007 || f->close_code() == 1002 || f->close_code() == 1011)
      << f->close_code();
  EXPECT_EQ(hub_.rec().count(WH_EV_MESSAGE, conn_), 0u);
}

TEST_F(DeflateRaw, UncompressedFramesStillWork) {
  ASSERT_TRUE(c_.send_text("plain"));
  auto m = hub_.rec().wait_event(WH_EV_MESSAGE, conn_);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->flags & WH_COMPRESSED, 0);
  auto f = c_.read_data_frame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, "plain");
  EXPECT_EQ(f->rsv, 0) << "5 bytes is below the threshold";
}

TEST_F(DeflateRaw, CompressedBombAboveMaxFailsWith1009) {
  std::string zeros(1 << 20, '\0');
  ASSERT_TRUE(c_.send_frame(OP_BINARY, pmd_compress(zeros), FrameOpts().with_rsv(RSV1)));
  expect_failed_with(c_, 1009);
  auto e = hub_.rec().wait_event(WH_EV_CLOSE, conn_);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error, WH_ETOOBIG) << wh_err_name(e->error);
}

// ------------------------------------------------------------- publish
// A published message is framed once and compressed at most once per window
// size its subscribers agreed on (server_max_window_bits), with each server's
// own level, whatever thread compresses it.
namespace {

// Inflates one message byte by byte with an inflater of exactly `bits`, so
// every back-reference crosses a call and is checked against that window.
std::optional<std::string> inflate_within(int bits, const std::string& z) {
  wirehub::inflater inf(bits, true);
  std::string out;
  for (size_t i = 0; i < z.size(); ++i)
    if (inf.feed(reinterpret_cast<const uint8_t*>(z.data()) + i, 1, out, 1 << 24) != wirehub::inflater::result::ok)
      return std::nullopt;
  if (inf.finish(out, 1 << 24) != wirehub::inflater::result::ok) return std::nullopt;
  return out;
}

}  // namespace

TEST_F(Deflate, PublishCompressesOncePerSubscriberWindowSize) {
  struct sub {
    RawClient c;
    int bits;  // 0: no deflate
  };
  std::vector<sub> subs;
  for (int bits : {9, 15, 9, 0, 15, 9, 15, 0, 8}) {
    sub s;
    s.bits = bits;
    ASSERT_TRUE(s.c.connect(port_));
    std::string ext;
    if (bits == 15) ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    if (bits != 0 && bits != 15)
      ext = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=" + std::to_string(bits) + "\r\n";
    HttpResponse r = s.c.upgrade("/", ext);
    ASSERT_EQ(r.status, 101) << r.head;
    if (bits != 0 && bits != 15) {
      EXPECT_NE(r.header("Sec-WebSocket-Extensions").value_or("").find("server_max_window_bits=" + std::to_string(bits)),
                std::string::npos)
          << r.head;
    }
    ASSERT_NE(hub_.rec().wait_server_conn(s.c.local_port()), nullptr);
    subs.push_back(std::move(s));
  }
  for (int round = 0; round < 3; ++round) {
    // Repeats at distances past 512 bytes: a 9-bit receiver fails on a frame
    // compressed with the 15-bit window.
    std::string text = compressible_text(3000 + 1000 * round);
    text += text;
    const auto before = wirehub::prepared_message::compressions.load();
    ASSERT_EQ(wh_server_broadcast(server_, text.data(), text.size(), WH_TEXT, nullptr), int(subs.size()));
    for (auto& s : subs) {
      SCOPED_TRACE("round " + std::to_string(round) + " bits " + std::to_string(s.bits));
      auto f = s.c.read_data_frame();
      ASSERT_TRUE(f.has_value());
      if (s.bits == 0) {
        EXPECT_EQ(f->rsv, 0);
        EXPECT_TRUE(f->payload == text);
        continue;
      }
      EXPECT_EQ(f->rsv, RSV1);
      EXPECT_LT(f->payload.size(), text.size() / 4);
      auto back = inflate_within(s.bits, f->payload);
      ASSERT_TRUE(back.has_value()) << "the frame refers past the agreed window";
      EXPECT_TRUE(*back == text);
    }
    // Windows 8 and 9 compress alike (zlib has no 8-bit compressor), so two
    // distinct frames: one 9-bit, one 15-bit, whatever the subscriber count.
    EXPECT_EQ(wirehub::prepared_message::compressions.load() - before, 2u);
  }
  // No deflate subscriber: nothing is compressed at all.
  std::vector<sub> plain;
  const auto before = wirehub::prepared_message::compressions.load();
  const std::string text = compressible_text(5000);
  ASSERT_EQ(wh_server_publish(server_, "nobody", text.data(), text.size(), WH_TEXT, nullptr), 0);
  EXPECT_EQ(wirehub::prepared_message::compressions.load() - before, 0u);
}

TEST(DeflatePublishLevels, TwoServersOnOneThreadCompressAtTheirOwnLevels) {
  TestHub hub;
  hub.set_handler(echo_handler);
  std::string text;
  for (int i = 0; i < 400; ++i) text += "{\"id\":" + std::to_string(i * 7919 % 1000) + ",\"name\":\"item" +
                                        std::to_string(i % 37) + "\",\"on\":" + (i % 3 ? "true" : "false") + "} ";
  struct one {
    wh_server* server;
    RawClient c;
    int level;
  };
  std::vector<one> servers;
  for (int level : {1, 9}) {
    wh_server_options o = server_options();
    o.deflate.enabled = 1;
    o.deflate.level = level;
    one s{hub.listen(o), RawClient(), level};
    ASSERT_NE(s.server, nullptr);
    ASSERT_TRUE(s.c.connect(wh_server_port(s.server)));
    HttpResponse r = s.c.upgrade("/", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    ASSERT_EQ(r.status, 101) << r.head;
    ASSERT_NE(hub.rec().wait_server_conn(s.c.local_port()), nullptr);
    servers.push_back(std::move(s));
  }
  std::vector<size_t> sizes;
  for (auto& s : servers) {
    SCOPED_TRACE("level " + std::to_string(s.level));
    ASSERT_EQ(wh_server_broadcast(s.server, text.data(), text.size(), WH_TEXT, nullptr), 1);
    auto f = s.c.read_data_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->rsv, RSV1);
    // Exactly what a fresh compressor at this level produces.
    wirehub::deflater ref(15, s.level, 8, true);
    std::string z;
    ASSERT_TRUE(ref.compress(reinterpret_cast<const uint8_t*>(text.data()), text.size(), z));
    EXPECT_TRUE(f->payload == z) << f->payload.size() << " bytes, level " << s.level << " gives " << z.size();
    sizes.push_back(f->payload.size());
  }
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_LT(sizes[1], sizes[0]) << "level 9 compresses tighter than level 1";
  hub.destroy();
}

// ------------------------------------------------- ws's server answer
// WH_SERVER_WS_DEFLATE_ANSWER: the answer ws 8 gives, through the C ABI, and
// then the windows and context rules of that answer in both directions.
namespace {

struct ws_answer_case {
  int snct, cnct, sbits, cbits;  // wh_deflate_options, in ws's terms under the flag
  const char* offer;
  const char* answer;  // nullptr: no Sec-WebSocket-Extensions in the 101
};

// A client's compressor with exactly this window (zlib has none of 8 bits:
// 9, whose distances stay within 250 bytes) and context rule.
class client_deflater {
 public:
  client_deflater(int bits, bool no_context) : no_context_(no_context) {
    ok_ = deflateInit2(&zs_, 6, Z_DEFLATED, -std::max(bits, 9), 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~client_deflater() {
    if (ok_) deflateEnd(&zs_);
  }
  std::string compress(const std::string& in) {
    std::string out(deflateBound(&zs_, in.size()) + 64, '\0');
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    zs_.next_out = reinterpret_cast<Bytef*>(&out[0]);
    zs_.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&zs_, Z_SYNC_FLUSH), Z_OK);
    EXPECT_EQ(zs_.avail_in, 0u);
    out.resize(out.size() - zs_.avail_out - 4);  // 00 00 ff ff
    if (no_context_) deflateReset(&zs_);
    return out;
  }
  bool ok() const { return ok_; }

 private:
  z_stream zs_{};
  bool ok_ = false;
  bool no_context_;
};

int window_of(const std::string& answer, const char* name) {
  const size_t at = answer.find(name);
  return at == std::string::npos ? 15 : std::stoi(answer.substr(at + std::strlen(name) + 1));
}

// Opens a raw client on a server with the flag and these options, checks the
// answer, then sends messages compressed as the answer allows and reads the
// echoes back with the windows the answer gives the server.
void expect_ws_answer_and_traffic(const ws_answer_case& c) {
  SCOPED_TRACE(testing::Message() << c.snct << "/" << c.cnct << "/" << c.sbits << "/" << c.cbits << " offer "
                                  << c.offer);
  TestHub hub;
  hub.set_handler(echo_handler);
  wh_server_options o = server_options();
  o.flags = WH_SERVER_WS_DEFLATE_ANSWER;
  o.deflate.enabled = 1;
  o.deflate.server_no_context_takeover = c.snct;
  o.deflate.client_no_context_takeover = c.cnct;
  o.deflate.server_max_window_bits = c.sbits;
  o.deflate.client_max_window_bits = c.cbits;
  o.deflate.threshold = 1;  // small messages compressed too
  wh_server* server = hub.listen(o);
  ASSERT_NE(server, nullptr);
  RawClient cl;
  ASSERT_TRUE(cl.connect(wh_server_port(server)));
  HttpResponse r = cl.upgrade("/", std::string("Sec-WebSocket-Extensions: ") + c.offer + "\r\n");
  ASSERT_EQ(r.status, 101) << r.head;
  wh_conn* conn = hub.rec().wait_server_conn(cl.local_port());
  ASSERT_NE(conn, nullptr);
  if (c.answer == nullptr) {
    EXPECT_FALSE(r.has_header("Sec-WebSocket-Extensions")) << r.head;
    EXPECT_STREQ(wh_conn_extensions(conn), "");
    cl.close();
    hub.destroy();
    return;
  }
  EXPECT_EQ(r.header("Sec-WebSocket-Extensions").value_or("(none)"), c.answer);
  EXPECT_STREQ(wh_conn_extensions(conn), c.answer);

  const std::string answer = c.answer;
  const int cbits = window_of(answer, "client_max_window_bits");
  const int sbits = window_of(answer, "server_max_window_bits");
  const bool cnct = answer.find("client_no_context_takeover") != std::string::npos;
  const bool snct = answer.find("server_no_context_takeover") != std::string::npos;
  // Noise that repeats just inside the client's window: the second copy is
  // all back-references into the first message when context is kept, which
  // an inflater with any smaller window fails on. The same just past the
  // server's window: a server compressing with more than it answered would
  // refer to it, and our inflater (exactly the answered window) would fail.
  const std::string near = random_bytes(size_t(std::max((1 << cbits) - 300, 200)), 11);
  const std::string past = random_bytes(std::min((size_t(2) << sbits) - 300, size_t(40000)), 12);
  const std::vector<std::string> messages = {compressible_text(200), near, near, past, past,
                                             compressible_text(64 * 1024)};
  client_deflater out(cbits, cnct);
  ASSERT_TRUE(out.ok());
  wirehub::inflater in(sbits, snct);
  for (size_t i = 0; i < messages.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i) + ", " + std::to_string(messages[i].size()) + " bytes");
    const std::string z = out.compress(messages[i]);
    ASSERT_TRUE(cl.send_frame(OP_BINARY, z, FrameOpts().with_rsv(RSV1)));
    auto f = cl.read_data_frame();
    ASSERT_TRUE(f.has_value()) << hub.rec().dump();
    ASSERT_EQ(f->opcode, OP_BINARY);
    EXPECT_EQ(f->rsv, RSV1) << "the echo is compressed";
    // Byte by byte, so every back-reference is checked against the window.
    std::string back;
    for (size_t k = 0; k < f->payload.size(); ++k)
      ASSERT_EQ(in.feed(reinterpret_cast<const uint8_t*>(f->payload.data()) + k, 1, back, 1 << 24),
                wirehub::inflater::result::ok)
          << "the server's frame refers past server_max_window_bits=" << sbits;
    ASSERT_EQ(in.finish(back, 1 << 24), wirehub::inflater::result::ok);
    EXPECT_TRUE(back == messages[i]);
  }
  auto got = hub.rec().events(WH_EV_MESSAGE, conn);
  ASSERT_EQ(got.size(), messages.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].flags & WH_COMPRESSED);
    EXPECT_TRUE(got[i].data == messages[i]) << "message " << i;
  }
  EXPECT_EQ(hub.rec().count(WH_EV_CLOSE, conn), 0u) << hub.rec().dump();
  cl.close();
  hub.destroy();
}

}  // namespace

// The cases a ws 8.21 server and a wirehub server were seen to answer apart.
TEST(DeflateWsAnswer, AnswersAsWsAndTheDataFlowsCompressedWithTheAnsweredWindows) {
  const ws_answer_case cases[] = {
      {0, 0, 0, 0,
       "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; "
       "server_max_window_bits=9",
       "permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=9"},
      {1, 0, 0, 0, "permessage-deflate; server_max_window_bits=10",
       "permessage-deflate; server_max_window_bits=10; server_no_context_takeover"},
      {0, 0, 12, 0, "permessage-deflate; server_max_window_bits=9, permessage-deflate",
       "permessage-deflate; server_max_window_bits=12"},
      // Answered above the offer: inflated with 11, which the client may use.
      {0, 0, 0, 11, "permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=11"},
      {0, 0, 0, -1, "permessage-deflate; client_max_window_bits=10", "permessage-deflate"},
  };
  for (const auto& c : cases) expect_ws_answer_and_traffic(c);
}

TEST(DeflateWsAnswer, EveryKindOfAnswerCarriesCompressedDataBothWays) {
  const ws_answer_case cases[] = {
      {0, 0, 0, 0, "permessage-deflate", "permessage-deflate"},
      {0, 0, 0, 0, "permessage-deflate; client_max_window_bits", "permessage-deflate"},
      {0, 1, 0, 0, "permessage-deflate", "permessage-deflate; client_no_context_takeover"},
      {0, 0, 0, 0, "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
       "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"},
      {0, 0, 0, 9, "permessage-deflate; client_max_window_bits=12", "permessage-deflate; client_max_window_bits=9"},
      {-1, 0, -1, 0,
       "permessage-deflate; server_no_context_takeover, permessage-deflate; server_max_window_bits=10, "
       "permessage-deflate",
       "permessage-deflate"},
      {1, 1, 15, 15, "permessage-deflate; client_max_window_bits",
       "permessage-deflate; client_max_window_bits=15; server_no_context_takeover; client_no_context_takeover; "
       "server_max_window_bits=15"},
      {1, 1, 10, 10, "permessage-deflate; server_max_window_bits=13; client_max_window_bits=14",
       "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10; server_no_context_takeover; "
       "client_no_context_takeover"},
      // Refused by ws (a 400 there): the engine goes on uncompressed.
      {0, 0, 12, 0, "permessage-deflate; server_max_window_bits=9", nullptr},
      {0, 0, 0, 0, "permessage-deflate; foo, permessage-deflate", nullptr},
      {0, 0, 0, 11, "permessage-deflate", nullptr},
  };
  for (const auto& c : cases) expect_ws_answer_and_traffic(c);
}

// The options' meaning changes with the flag only: without it, a zeroed
// struct is RFC 7692's default and -1 is no window size.
TEST(DeflateWsAnswer, WithoutTheFlagTheRfcAnswerAndSettingsStay) {
  TestHub hub;
  wh_server_options o = server_options();
  o.deflate.enabled = 1;
  wh_server* server = hub.listen(o);
  ASSERT_NE(server, nullptr);
  RawClient cl;
  ASSERT_TRUE(cl.connect(wh_server_port(server)));
  HttpResponse r = cl.upgrade("/", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n");
  ASSERT_EQ(r.status, 101) << r.head;
  EXPECT_EQ(r.header("Sec-WebSocket-Extensions").value_or(""),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10");
  cl.close();
  for (int which = 0; which < 2; ++which) {
    wh_server_options bad = server_options();
    bad.deflate.enabled = 1;
    (which ? bad.deflate.client_max_window_bits : bad.deflate.server_max_window_bits) = -1;
    int err = 0;
    EXPECT_EQ(hub.listen(bad, &err), nullptr);
    EXPECT_EQ(err, WH_EINVAL);
    bad.flags = WH_SERVER_WS_DEFLATE_ANSWER;
    wh_server* ok = hub.listen(bad, &err);
    EXPECT_NE(ok, nullptr) << wh_err_name(err);
  }
  hub.destroy();
}
