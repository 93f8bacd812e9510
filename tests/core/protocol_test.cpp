// protocol_test.cpp — the sans-I/O protocol core (core/src/protocol.hpp): bytes
// in, events out, with no socket. Every stream is also fed in every split and
// one byte at a time, since TCP may cut it anywhere.
#include "protocol.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using namespace wirehub;

namespace {

// A client frame: masked with a fixed key (servers require masks).
std::string client_frame(std::uint8_t opcode, std::string_view payload, bool fin = true, bool rsv1 = false,
                         bool mask = true) {
  std::uint8_t hdr[frame::max_header_size];
  const std::uint32_t key = 0x5A3C7E91;
  const std::size_t hn = frame::write_header(hdr, opcode, fin, rsv1, payload.size(), mask, key);
  std::string out(reinterpret_cast<char*>(hdr), hn);
  std::string body(payload);
  if (mask) frame::apply_mask(reinterpret_cast<std::uint8_t*>(body.data()), body.size(), key);
  return out + body;
}

std::string close_payload(unsigned code, std::string_view reason = {}) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xFF);
  p += reason;
  return p;
}

// Records every event as a line of text, so two feeds compare as strings.
struct recorder : protocol::handler {
  std::vector<std::string> events;
  std::size_t budget = SIZE_MAX, reserved = 0;
  int stop_after_messages = -1;  // on_message returns false once after this many
  int messages = 0;
  int stop_every_fragments = 0;  // on_fragment returns false after every this many
  int fragments = 0;
  bool on_fragment() override { return !stop_every_fragments || ++fragments % stop_every_fragments != 0; }
  bool on_message(const std::uint8_t* d, std::size_t n, int flags) override {
    events.push_back(std::string(flags & WH_TEXT ? "text:" : "binary:") + (flags & WH_COMPRESSED ? "z:" : "") +
                     std::string(reinterpret_cast<const char*>(d), n));
    return ++messages != stop_after_messages;
  }
  bool on_ping(const std::uint8_t* d, std::size_t n) override {
    events.push_back("ping:" + std::string(reinterpret_cast<const char*>(d), n));
    return true;
  }
  bool on_pong(const std::uint8_t* d, std::size_t n) override {
    events.push_back("pong:" + std::string(reinterpret_cast<const char*>(d), n));
    return true;
  }
  void on_close(unsigned code, std::string_view reason) override {
    events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
  }
  void on_fail(int code, std::string_view, int error) override {
    events.push_back("fail:" + std::to_string(code) + ":" + wh_err_name(error));
  }
  bool reserve(std::size_t more) override {
    if (reserved + more > budget) return false;
    reserved += more;
    return true;
  }
  void unreserve(std::size_t less) override { reserved -= less; }
};

endpoint_config config(std::size_t max_message = 1 << 20) {
  endpoint_config c;
  c.max_message_size = max_message;
  return c;
}

std::vector<std::string> feed_all(const std::string& bytes, const std::vector<std::size_t>& cuts,
                                  protocol::role role = protocol::role::server, const deflate_params* pmd = nullptr,
                                  std::size_t max_message = 1 << 20) {
  auto cfg = config(max_message);
  protocol p(role, cfg);
  if (pmd) p.set_deflate(*pmd);
  recorder r;
  std::string copy = bytes;
  auto* data = reinterpret_cast<std::uint8_t*>(copy.data());
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    if (cut <= at || cut > copy.size()) continue;
    if (!p.feed(data + at, cut - at, r)) return r.events;
    at = cut;
  }
  if (at < copy.size()) p.feed(data + at, copy.size() - at, r);
  EXPECT_EQ(r.reserved, p.held());
  return r.events;
}

// The events of a stream fed whole, in every two-piece split, and byte by byte.
void expect_same_in_every_split(const std::string& bytes, const std::vector<std::string>& want,
                                protocol::role role = protocol::role::server, const deflate_params* pmd = nullptr) {
  EXPECT_EQ(feed_all(bytes, {}, role, pmd), want) << "fed whole";
  for (std::size_t i = 1; i < bytes.size(); ++i) EXPECT_EQ(feed_all(bytes, {i}, role, pmd), want) << "split at " << i;
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < bytes.size(); ++i) every.push_back(i);
  EXPECT_EQ(feed_all(bytes, every, role, pmd), want) << "one byte at a time";
}

TEST(Protocol, MessagesControlFramesAndCloseInEverySplit) {
  const std::string big(300, 'x');  // a 16-bit length
  std::string s = client_frame(frame::op_text, "hello") + client_frame(frame::op_binary, big) +
                  client_frame(frame::op_ping, "p") + client_frame(frame::op_text, "frag", false) +
                  client_frame(frame::op_pong, "q") + client_frame(frame::op_continuation, "ment", false) +
                  client_frame(frame::op_continuation, "s") + client_frame(frame::op_close, close_payload(1000, "bye")) +
                  client_frame(frame::op_text, "after close");
  expect_same_in_every_split(s, {"text:hello", "binary:" + big, "ping:p", "pong:q", "text:fragments", "close:1000:bye"});
}

TEST(Protocol, ClientRoleTakesUnmaskedFramesAndRefusesMaskedOnes) {
  expect_same_in_every_split(client_frame(frame::op_text, "hi", true, false, false), {"text:hi"},
                             protocol::role::client);
  EXPECT_EQ(feed_all(client_frame(frame::op_text, "hi"), {}, protocol::role::client),
            std::vector<std::string>{"fail:1002:WH_EPROTO"});
  EXPECT_EQ(feed_all(client_frame(frame::op_text, "hi", true, false, false), {}),
            std::vector<std::string>{"fail:1002:WH_EPROTO"})
      << "a server refuses unmasked frames";
}

TEST(Protocol, AnnouncedLengthCostsNothingUntilTheBytesArrive) {
  // Finding 1: a header announcing ~1 MiB, then one payload byte at a time.
  auto cfg = config(1 << 20);
  protocol p(protocol::role::server, cfg);
  recorder r;
  std::string f = client_frame(frame::op_binary, std::string((1 << 20) - 1, 'a'));
  auto* d = reinterpret_cast<std::uint8_t*>(f.data());
  ASSERT_TRUE(p.feed(d, 15, r));  // 14-byte header + 1 payload byte
  EXPECT_EQ(p.held(), 15u);
  EXPECT_LT(p.footprint(), 1024u) << "a buffer sized by what arrived, not what was announced";
  for (std::size_t i = 15; i < 4015; ++i) ASSERT_TRUE(p.feed(d + i, 1, r));
  EXPECT_EQ(p.held(), 4015u);
  EXPECT_LE(p.footprint(), 2 * 4015u + 256) << "grows geometrically with what arrived";
  ASSERT_TRUE(p.feed(d + 4015, f.size() - 4015, r));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].size(), std::string("binary:").size() + (1 << 20) - 1);
  EXPECT_EQ(p.held(), 0u);
  EXPECT_EQ(r.reserved, 0u);
}

TEST(Protocol, LargeFrameReadThroughTheWindowGrowsWithWhatArrived) {
  auto cfg = config(4 << 20);
  protocol p(protocol::role::server, cfg);
  recorder r;
  std::string f = client_frame(frame::op_binary, std::string(3 << 20, 'w'));
  auto* d = reinterpret_cast<std::uint8_t*>(f.data());
  ASSERT_TRUE(p.feed(d, 100 << 10, r));
  std::size_t at = 100 << 10;
  while (at < f.size()) {
    auto [w, room] = p.window(512 * 1024);
    ASSERT_NE(w, nullptr);
    const std::size_t n = std::min(room, f.size() - at);
    std::memcpy(w, d + at, n);
    at += n;
    EXPECT_LE(p.footprint(), 2 * at + (64u << 10)) << "at " << at;
    ASSERT_TRUE(p.feed_window(n, r));
  }
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(p.held(), 0u);
}

TEST(Protocol, OversizedMessageFailsFromItsHeaderBeforeAnyPayload) {
  EXPECT_EQ(feed_all(client_frame(frame::op_binary, std::string(2000, 'a')).substr(0, 8), {}, protocol::role::server,
                     nullptr, 1000),
            std::vector<std::string>{"fail:1009:WH_ETOOBIG"});
  // Fragments count together.
  std::string s = client_frame(frame::op_text, std::string(600, 'a'), false) +
                  client_frame(frame::op_continuation, std::string(600, 'a'));
  EXPECT_EQ(feed_all(s, {}, protocol::role::server, nullptr, 1000), std::vector<std::string>{"fail:1009:WH_ETOOBIG"});
}

TEST(Protocol, ALengthPast2To53FailsWithWsReasonWhenClosingAsWs) {
  // An unmasked binary frame announcing 2^53 bytes, as a server sends it.
  std::string head("\x82\x7f\x00\x20\x00\x00\x00\x00\x00\x00", 10);
  struct why_recorder : recorder {
    std::string reason;
    void on_fail(int code, std::string_view r, int error) override {
      recorder::on_fail(code, r, error);
      reason = std::string(r);
    }
  };
  for (bool ws : {false, true}) {
    auto cfg = config(SIZE_MAX);
    cfg.bare_close = ws;
    protocol p(protocol::role::client, cfg);
    why_recorder r;
    auto copy = head;
    p.feed(reinterpret_cast<std::uint8_t*>(copy.data()), copy.size(), r);
    if (ws) {
      // ws's receiver: before any limit, whatever maxPayload is
      EXPECT_EQ(r.events, std::vector<std::string>{"fail:1009:WH_ETOOBIG"});
      EXPECT_EQ(r.reason, "payload length > 2^53 - 1");
    } else {
      EXPECT_TRUE(r.events.empty()) << "no limit: the engine waits for the bytes";
      EXPECT_LE(p.held(), head.size()) << "holding only what arrived";
    }
  }
}

TEST(Protocol, InvalidUtf8SplitAcrossFragmentsFailsWith1007) {
  // U+00E9 is C3 A9; C3 followed by a non-continuation byte is invalid.
  std::string s = client_frame(frame::op_text, "ok\xC3", false) + client_frame(frame::op_continuation, "(", true);
  expect_same_in_every_split(s, {"fail:1007:WH_EUTF8"});
  // The same character split validly is fine.
  std::string good = client_frame(frame::op_text, "ok\xC3", false) + client_frame(frame::op_continuation, "\xA9");
  expect_same_in_every_split(good, {"text:ok\xC3\xA9"});
}

TEST(Protocol, ProtocolViolationsCloseWithTheRightCode) {
  EXPECT_EQ(feed_all(client_frame(frame::op_continuation, "x"), {}), std::vector<std::string>{"fail:1002:WH_EPROTO"});
  EXPECT_EQ(feed_all(client_frame(frame::op_text, "x", false) + client_frame(frame::op_text, "y"), {}),
            std::vector<std::string>{"fail:1002:WH_EPROTO"});
  EXPECT_EQ(feed_all(client_frame(frame::op_ping, "x", false), {}), std::vector<std::string>{"fail:1002:WH_EPROTO"});
  EXPECT_EQ(feed_all(client_frame(frame::op_close, "x"), {}), std::vector<std::string>{"fail:1002:WH_EPROTO"});
  EXPECT_EQ(feed_all(client_frame(frame::op_close, close_payload(999)), {}),
            std::vector<std::string>{"fail:1002:WH_EPROTO"});
  EXPECT_EQ(feed_all(client_frame(frame::op_close, close_payload(1000, "\xFF")), {}),
            std::vector<std::string>{"fail:1007:WH_EUTF8"});
  EXPECT_EQ(feed_all(client_frame(frame::op_text, "z", true, true), {}), std::vector<std::string>{"fail:1002:WH_EPROTO"})
      << "RSV1 without permessage-deflate";
  std::string reserved_opcode = client_frame(frame::op_text, "x");
  reserved_opcode[0] = static_cast<char>(0x83);
  EXPECT_EQ(feed_all(reserved_opcode, {}), std::vector<std::string>{"fail:1002:WH_EPROTO"});
}

TEST(Protocol, CompressedMessagesInEverySplitWithAndWithoutContextTakeover) {
  for (bool no_ctx : {true, false}) {
    deflater z(15, 1, 8, no_ctx);
    std::string a, b;
    const std::string text = "hello hello hello hello";
    ASSERT_TRUE(z.compress(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), a));
    ASSERT_TRUE(z.compress(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), b));
    // The second message also in two fragments (RSV1 on the first only).
    std::string s = client_frame(frame::op_text, a, true, true) +
                    client_frame(frame::op_text, b.substr(0, 3), false, true) +
                    client_frame(frame::op_continuation, b.substr(3));
    deflate_params pmd;
    pmd.client_no_context_takeover = no_ctx;
    expect_same_in_every_split(s, {"text:z:" + text, "text:z:" + text}, protocol::role::server, &pmd);
  }
}

TEST(Protocol, DeflateBombStopsAtTheLimit) {
  deflater z(15, 9, 9, true);
  std::string zero(4 << 20, '\0'), bomb;
  ASSERT_TRUE(z.compress(reinterpret_cast<const std::uint8_t*>(zero.data()), zero.size(), bomb));
  ASSERT_LT(bomb.size(), 10000u);
  deflate_params pmd;
  pmd.client_no_context_takeover = true;
  EXPECT_EQ(feed_all(client_frame(frame::op_binary, bomb, true, true), {}, protocol::role::server, &pmd, 1 << 20),
            std::vector<std::string>{"fail:1009:WH_ETOOBIG"});
}

TEST(Protocol, BudgetRefusalFailsWith1008AndGivesEverythingBack) {
  auto cfg = config(1 << 20);
  protocol p(protocol::role::server, cfg);
  recorder r;
  r.budget = 1000;
  std::string f = client_frame(frame::op_binary, std::string(5000, 'b'));
  auto* d = reinterpret_cast<std::uint8_t*>(f.data());
  EXPECT_TRUE(p.feed(d, 900, r));
  EXPECT_FALSE(p.feed(d + 900, 900, r));
  EXPECT_EQ(r.events, std::vector<std::string>{"fail:1008:WH_EBUDGET"});
  EXPECT_EQ(r.reserved, 0u);
  EXPECT_EQ(p.held(), 0u);
}

TEST(Protocol, AHandlerThatStopsKeepsTheRestInOrderForTheResumedFeed) {
  std::string s = client_frame(frame::op_text, "one") + client_frame(frame::op_text, "two") +
                  client_frame(frame::op_text, "three");
  auto cfg = config();
  protocol p(protocol::role::server, cfg);
  recorder r;
  r.stop_after_messages = 1;
  std::string first = s.substr(0, s.size() - 2), rest = s.substr(s.size() - 2);
  EXPECT_TRUE(p.feed(reinterpret_cast<std::uint8_t*>(first.data()), first.size(), r));
  EXPECT_TRUE(p.stopped());
  EXPECT_EQ(r.events, std::vector<std::string>{"text:one"});
  EXPECT_TRUE(p.feed(nullptr, 0, r));
  EXPECT_EQ(r.events, (std::vector<std::string>{"text:one", "text:two"}));
  EXPECT_TRUE(p.feed(reinterpret_cast<std::uint8_t*>(rest.data()), rest.size(), r));
  EXPECT_EQ(r.events, (std::vector<std::string>{"text:one", "text:two", "text:three"}));
}

TEST(Protocol, AStopAfterAFragmentResumesTheSameMessage) {
  // A turn's share can end between two fragments of one message.
  std::string s = client_frame(frame::op_text, "a", false);
  for (int i = 0; i < 9; ++i) s += client_frame(frame::op_continuation, "b", false);
  s += client_frame(frame::op_continuation, "c") + client_frame(frame::op_text, "next");
  auto cfg = config();
  protocol p(protocol::role::server, cfg);
  recorder r;
  r.stop_every_fragments = 3;
  EXPECT_TRUE(p.feed(reinterpret_cast<std::uint8_t*>(s.data()), s.size(), r));
  int resumes = 0;
  while (p.stopped() && resumes < 20) {
    EXPECT_TRUE(r.events.empty());
    EXPECT_TRUE(p.feed(nullptr, 0, r));
    ++resumes;
  }
  EXPECT_EQ(resumes, 3);
  EXPECT_EQ(r.events, (std::vector<std::string>{"text:abbbbbbbbbc", "text:next"}));
}

TEST(Protocol, MoreNonEmptyFragmentsThanMaxFragmentsClose1008) {
  // ws's maxFragments (131072 by default): empty fragments hold nothing
  // and do not count.
  auto run = [](std::string bytes) {
    auto cfg = config();
    cfg.max_fragments = 3;
    protocol p(protocol::role::server, cfg);
    recorder r;
    p.feed(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size(), r);
    return r.events;
  };
  std::string ok = client_frame(frame::op_text, "a", false) + client_frame(frame::op_continuation, "", false) +
                   client_frame(frame::op_continuation, "b", false) + client_frame(frame::op_continuation, "c");
  EXPECT_EQ(run(ok), std::vector<std::string>{"text:abc"});
  std::string many = client_frame(frame::op_text, "a", false);
  for (int i = 0; i < 3; ++i) many += client_frame(frame::op_continuation, "b", false);
  many += client_frame(frame::op_continuation, "c");
  EXPECT_EQ(run(many), std::vector<std::string>{"fail:1008:WH_ELIMIT"});
}

// ws's maxBufferedChunks: its receiver holds each read until it has taken
// the bytes it needs next (two header bytes, the extended length, the mask,
// then the whole payload) and refuses a read that arrives while it holds the
// limit. With 8, a masked frame sent one byte per read passes with up to 8
// payload bytes (7 held when the last arrives) and fails with 9.
struct reason_recorder : recorder {
  std::string reason;
  void on_fail(int code, std::string_view why, int error) override {
    recorder::on_fail(code, why, error);
    reason = std::string(why);
  }
};

std::vector<std::string> byte_per_read(std::string bytes, std::uint32_t max_chunks, std::string* reason = nullptr) {
  auto cfg = config();
  cfg.max_buffered_chunks = max_chunks;
  protocol p(protocol::role::server, cfg);
  reason_recorder r;
  auto* d = reinterpret_cast<std::uint8_t*>(bytes.data());
  for (std::size_t i = 0; i < bytes.size(); ++i)
    if (!p.feed(d + i, 1, r)) break;
  if (reason) *reason = r.reason;
  return r.events;
}

TEST(Protocol, MaxBufferedChunksCountsReadsAsWsReceiverHoldsThem) {
  EXPECT_EQ(byte_per_read(client_frame(frame::op_text, "12345678"), 8), std::vector<std::string>{"text:12345678"});
  std::string reason;
  EXPECT_EQ(byte_per_read(client_frame(frame::op_text, "123456789"), 8, &reason),
            std::vector<std::string>{"fail:1008:WH_ELIMIT"});
  EXPECT_EQ(reason, "too many buffered chunks");
  // The count starts again with every frame and every header part.
  const std::string two = client_frame(frame::op_text, "abcdefgh") + client_frame(frame::op_binary, "ijklmnop");
  EXPECT_EQ(byte_per_read(two, 8), (std::vector<std::string>{"text:abcdefgh", "binary:ijklmnop"}));
  // A 16-bit length: its two bytes are one more part ws takes on its own.
  const std::string long_frame = client_frame(frame::op_binary, std::string(200, 'x'));
  EXPECT_EQ(byte_per_read(long_frame, 8), std::vector<std::string>{"fail:1008:WH_ELIMIT"});
  EXPECT_EQ(byte_per_read(long_frame, 0), std::vector<std::string>{"binary:" + std::string(200, 'x')})
      << "0: no limit";
  // Fed in larger reads, the same frame never holds many.
  EXPECT_EQ(feed_all(long_frame, {3, 50, 100, 150}), std::vector<std::string>{"binary:" + std::string(200, 'x')});
}

TEST(Protocol, MaxBufferedChunksHoldsOnlyReadsWithBytesPastWhatWsConsumed) {
  // Two header bytes in one read: ws takes them and holds nothing; each of
  // the next reads is then one more held chunk.
  auto cfg = config();
  cfg.max_buffered_chunks = 2;
  protocol p(protocol::role::server, cfg);
  recorder r;
  std::string f = client_frame(frame::op_text, "abc");  // 2 + 4 + 3 bytes
  auto* d = reinterpret_cast<std::uint8_t*>(f.data());
  ASSERT_TRUE(p.feed(d, 2, r));      // header taken: 0 held
  ASSERT_TRUE(p.feed(d + 2, 1, r));  // a mask byte: 1 held
  ASSERT_TRUE(p.feed(d + 3, 4, r));  // mask complete, 1 payload byte beyond it: 1 held
  ASSERT_TRUE(p.feed(d + 7, 1, r));  // 2 held
  EXPECT_FALSE(p.feed(d + 8, 1, r)) << "a read arriving while 2 are held";
  EXPECT_EQ(r.events, std::vector<std::string>{"fail:1008:WH_ELIMIT"});

  // The same bytes with the mask in a read of its own: nothing held after it.
  protocol q(protocol::role::server, cfg);
  recorder r2;
  std::string g = f;
  auto* e = reinterpret_cast<std::uint8_t*>(g.data());
  ASSERT_TRUE(q.feed(e, 1, r2));      // 1 held
  ASSERT_TRUE(q.feed(e + 1, 5, r2));  // header and mask taken: 0 held
  ASSERT_TRUE(q.feed(e + 6, 1, r2));  // 1
  ASSERT_TRUE(q.feed(e + 7, 1, r2));  // 2
  EXPECT_FALSE(q.feed(e + 8, 1, r2));
  EXPECT_EQ(r2.events, std::vector<std::string>{"fail:1008:WH_ELIMIT"});
}

// ws reports zlib's error for a message that does not inflate; the engine
// closes with 1007 and zlib's own words as the reason.
TEST(Protocol, AMessageThatDoesNotInflateFailsWith1007AndZlibsMessage) {
  deflate_params pmd;
  for (const bool fragmented : {false, true}) {
    SCOPED_TRACE(fragmented);
    auto cfg = config();
    protocol p(protocol::role::server, cfg);
    p.set_deflate(pmd);
    reason_recorder r;
    // A stored block whose length and its complement disagree.
    const std::string bad("\x00\x05\x00\x00\x00" "a", 6);
    std::string bytes = fragmented ? client_frame(frame::op_text, bad, false, true) +
                                         client_frame(frame::op_continuation, "")
                                   : client_frame(frame::op_text, bad, true, true);
    p.feed(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size(), r);
    EXPECT_EQ(r.events, std::vector<std::string>{"fail:1007:WH_EPROTO"});
    EXPECT_EQ(r.reason, "invalid stored block lengths");
  }
}

TEST(Protocol, RandomStreamsGiveTheSameEventsHoweverTheyAreCut) {
  std::mt19937 rng(42);
  std::string s;
  std::vector<std::string> want;
  for (int i = 0; i < 200; ++i) {
    std::string payload(rng() % 2000, static_cast<char>('a' + rng() % 26));
    if (rng() % 3 == 0) {
      const std::size_t cut = payload.empty() ? 0 : rng() % payload.size();
      s += client_frame(frame::op_binary, payload.substr(0, cut), false) +
           client_frame(frame::op_continuation, payload.substr(cut));
    } else {
      s += client_frame(frame::op_binary, payload);
    }
    want.push_back("binary:" + payload);
  }
  for (int round = 0; round < 20; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < s.size(); at += 1 + rng() % 3000) cuts.push_back(at);
    ASSERT_EQ(feed_all(s, cuts), want) << "round " << round;
  }
}

}  // namespace
