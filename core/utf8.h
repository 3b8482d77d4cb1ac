#pragma once
/* UTF-8 validation for text that crosses a trust boundary: names a
 * container chose (comm), bundle strings, server messages. msgpack str and
 * JSON strings must be valid UTF-8 for strict readers (Python's msgpack with
 * raw=False, Go), and a terminal must not receive bytes it would interpret. */
#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFDu

/* Decodes the sequence at s (n bytes available). Returns its length (1-4)
 * with the code point in *cp, or 0 when s does not start a valid shortest
 * form sequence: a stray continuation byte, a truncated sequence, an overlong
 * form, a surrogate (U+D800-DFFF) or a value above U+10FFFF. n must be > 0. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encodes cp (<= U+10FFFF) into out (room for 4); returns the length. */
size_t utf8_encode(uint32_t cp, char *out);

/* Copies s (n bytes) into out as valid UTF-8: every byte that does not
 * start a valid sequence becomes U+FFFD (one per byte, as Go's
 * encoding/json does). Writes at most cap-1 bytes and a NUL (cap > 0),
 * never cutting a character; returns the length the whole copy needs (like
 * snprintf), so a result >= cap means it was truncated. */
size_t utf8_sanitize(const char *s, size_t n, char *out, size_t cap);
