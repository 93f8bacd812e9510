// fuzz_pmd_negotiate — permessage-deflate offer and answer (RFC 7692), with
// both sides' configurations chosen by the input.
//
// Input: [server cfg: flags, bits][client cfg: flags, bits][mode]
//        [offer header (len+bytes)][answer header: the rest]
// Three properties:
//  1. pmd_negotiate_server on any offer header: an accepted offer yields
//     window bits in 8..15 and a response that names permessage-deflate;
//     a refused one leaves the response empty.
//  2. pmd_client_accept on any answer: accepted params are in 8..15, never
//     let the server use a larger client window than offered, and keep the
//     client_no_context_takeover the client asked for. With the mode's bit 1
//     the client takes the answer by ws's rules (ws_answer_rules), with bit 2
//     it refuses client_no_context_takeover: the client window is still
//     never above the offer, and a refused parameter is never accepted.
//  3. wirehub against wirehub: the server's answer to the client's own offer
//     (pmd_client_offer) is accepted by that client, both sides agree on
//     every parameter, and a message deflated with the agreed sender window
//     inflates with the receiver's (by the RFC's rules and by ws's).
// With the mode's bit 8 the server answers by ws's rules (ws_answer_rules,
// WH_SERVER_WS_DEFLATE_ANSWER; bits 16, 32 and 64: ws's false for
// serverNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits): an
// answer holds what the options force, is its own answer when offered back,
// and in 3. the server may refuse the client's offer, or answer a client
// window the client refuses (above its offer, as ws's client refuses it);
// when both take it, the client never compresses with a window larger than
// the server inflates with.
#include "fuzz_util.hpp"
#include "wirehub/permessage_deflate.hpp"

#include <string>

using wirehub::fuzz::input;

namespace {

wirehub::deflate_config config_from(input& in) {
  wirehub::deflate_config c;
  c.enabled = true;
  const std::uint8_t f = in.byte();
  c.server_no_context_takeover = f & 1;
  c.client_no_context_takeover = f & 2;
  c.level = (f >> 2) % 10;
  c.mem_level = 1 + (f >> 6) * 2;
  const std::uint8_t b = in.byte();
  c.server_max_window_bits = 7 + (b & 0x0f) % 10;  // 7 and 16 are out of range: default
  c.client_max_window_bits = 7 + (b >> 4) % 10;
  return c;
}

int effective_bits(int bits) { return bits >= 8 && bits <= 15 ? std::max(bits, 9) : 15; }

void check_params(const wirehub::deflate_params& p) {
  FUZZ_CHECK(p.server_max_window_bits >= 8 && p.server_max_window_bits <= 15);
  FUZZ_CHECK(p.client_max_window_bits >= 8 && p.client_max_window_bits <= 15);
}

// One message each way with the agreed parameters: what one side deflates,
// the other inflates back.
void round_trip(const wirehub::deflate_params& sp, const wirehub::deflate_params& cp,
                const wirehub::deflate_config& sc, const wirehub::deflate_config& cc, std::string_view msg) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(msg.data());
  {
    wirehub::deflater d(sp.server_max_window_bits, sc.level, sc.mem_level, sp.server_no_context_takeover);
    wirehub::inflater i(cp.server_max_window_bits, cp.server_no_context_takeover);
    std::string z, out;
    FUZZ_CHECK(d.compress(bytes, msg.size(), z));
    FUZZ_CHECK(i.feed(reinterpret_cast<const std::uint8_t*>(z.data()), z.size(), out, msg.size()) ==
               wirehub::inflater::result::ok);
    FUZZ_CHECK(i.finish(out, msg.size()) == wirehub::inflater::result::ok);
    FUZZ_CHECK(out == msg);
  }
  {
    wirehub::deflater d(cp.client_max_window_bits, cc.level, cc.mem_level, cp.client_no_context_takeover);
    wirehub::inflater i(sp.client_max_window_bits, sp.client_no_context_takeover);
    std::string z, out;
    FUZZ_CHECK(d.compress(bytes, msg.size(), z));
    FUZZ_CHECK(i.feed(reinterpret_cast<const std::uint8_t*>(z.data()), z.size(), out, msg.size()) ==
               wirehub::inflater::result::ok);
    FUZZ_CHECK(i.finish(out, msg.size()) == wirehub::inflater::result::ok);
    FUZZ_CHECK(out == msg);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in(data, size);
  wirehub::deflate_config sc = config_from(in);
  wirehub::deflate_config cc = config_from(in);
  const std::uint8_t mode = in.byte();
  cc.ws_answer_rules = mode & 2;
  const bool ws_server = mode & 8;
  if (ws_server) {
    sc.ws_answer_rules = true;
    // One int in the C ABI: true and false exclude each other.
    sc.refuse_server_no_context_takeover = (mode & 16) && !sc.server_no_context_takeover;
    if (mode & 32) sc.server_max_window_bits = wirehub::kNoServerWindowBits;
    if (mode & 64) sc.client_max_window_bits = wirehub::kNoClientWindowBits;
  }
  auto set_bits = [](int bits) { return bits >= 8 && bits <= 15 ? bits : 0; };
  const std::string_view offer = in.str();
  const std::string_view answer = in.rest();

  // 1. Any offer.
  {
    wirehub::deflate_params p;
    std::string response = "stale";
    if (wirehub::pmd_negotiate_server(offer, sc, p, response)) {
      check_params(p);
      FUZZ_CHECK(response.rfind("permessage-deflate", 0) == 0);
      if (sc.server_no_context_takeover) FUZZ_CHECK(p.server_no_context_takeover);
      if (sc.client_no_context_takeover) FUZZ_CHECK(p.client_no_context_takeover);
      FUZZ_CHECK(p.server_max_window_bits <= effective_bits(sc.server_max_window_bits));
      if (ws_server) {
        if (sc.refuse_server_no_context_takeover) FUZZ_CHECK(!p.server_no_context_takeover);
        if (set_bits(sc.server_max_window_bits)) FUZZ_CHECK(p.server_max_window_bits == sc.server_max_window_bits);
        if (sc.server_max_window_bits == wirehub::kNoServerWindowBits) FUZZ_CHECK(p.server_max_window_bits == 15);
        if (set_bits(sc.client_max_window_bits)) FUZZ_CHECK(p.client_max_window_bits == sc.client_max_window_bits);
        if (sc.client_max_window_bits == wirehub::kNoClientWindowBits) FUZZ_CHECK(p.client_max_window_bits == 15);
        // The answer offered back to ws's defaults is answered as it is.
        wirehub::deflate_config plain;
        plain.enabled = true;
        plain.ws_answer_rules = true;
        plain.server_no_context_takeover = false;
        wirehub::deflate_params again;
        std::string echo;
        FUZZ_CHECK(wirehub::pmd_negotiate_server(response, plain, again, echo));
        FUZZ_CHECK(echo == response);
      }
    } else {
      FUZZ_CHECK(response.empty());
    }
  }
  // 2. Any answer.
  {
    wirehub::deflate_params p;
    std::string error;
    wirehub::deflate_config c = cc;
    // One int in the C ABI: refusing it and offering it exclude each other.
    c.refuse_client_no_context_takeover = (mode & 4) && !c.client_no_context_takeover;
    if (wirehub::pmd_client_accept(answer, c, p, error)) {
      check_params(p);
      FUZZ_CHECK(p.client_max_window_bits <= effective_bits(c.client_max_window_bits));
      if (c.client_no_context_takeover && !c.ws_answer_rules) FUZZ_CHECK(p.client_no_context_takeover);
      if (c.refuse_client_no_context_takeover) FUZZ_CHECK(!p.client_no_context_takeover);
      if (effective_bits(c.server_max_window_bits) < 15 && !c.ws_answer_rules)
        FUZZ_CHECK(p.server_max_window_bits <= effective_bits(c.server_max_window_bits));
    } else {
      FUZZ_CHECK(!error.empty());
    }
  }
  // 3. Our client's offer to our server.
  {
    const std::string our_offer = wirehub::pmd_client_offer(cc);
    // Other offers may come first in the header; ours must still be found.
    const std::string header = (mode & 1) ? "x-unknown; a=1, " + our_offer : our_offer;
    wirehub::deflate_params sp, cp;
    std::string response, error;
    const bool answered = wirehub::pmd_negotiate_server(header, sc, sp, response);
    FUZZ_CHECK(answered || ws_server);
    if (!answered) return 0;
    if (!wirehub::pmd_client_accept(response, cc, cp, error)) {
      // ws's client refuses a client window above its offer too.
      if (ws_server && set_bits(cc.client_max_window_bits) &&
          sp.client_max_window_bits > cc.client_max_window_bits)
        return 0;
      std::fprintf(stderr, "offer [%s] answer [%s] refused: %s\n", our_offer.c_str(), response.c_str(),
                   error.c_str());
      FUZZ_CHECK(false);
    }
    FUZZ_CHECK(sp.server_no_context_takeover == cp.server_no_context_takeover);
    FUZZ_CHECK(sp.client_no_context_takeover == cp.client_no_context_takeover);
    FUZZ_CHECK(sp.server_max_window_bits == cp.server_max_window_bits);
    if (ws_server) {
      // Offered and left out of the answer: the client keeps to its offer.
      FUZZ_CHECK(sp.client_max_window_bits >= cp.client_max_window_bits);
    } else {
      FUZZ_CHECK(sp.client_max_window_bits == cp.client_max_window_bits);
    }
    round_trip(sp, cp, sc, cc, answer.substr(0, 4096));
  }
  return 0;
}
