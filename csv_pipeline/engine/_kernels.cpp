// The engine's hot loops, compiled: parsing plain CSV blocks, hashing and partitioning
// songs, and summing, sorting and rendering one bucket.
//
// Each loop here replaced a chain of Arrow/numpy passes that each walked the whole block
// (and allocated a copy of it); done in one pass per row, they run several times faster.
// Every function releases the GIL while it works, so the in-process Dask workers (threads)
// run them in parallel. Arrays cross the boundary as buffers (Arrow's or numpy's), in
// Arrow's layouts: string offsets int32, date32 as int32 days, int64 plays.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace {

constexpr uint64_t kMaxInt64 = 9223372036854775807ULL;

// A buffer argument, released when it goes out of scope.
struct InBuffer {
    Py_buffer view{};
    bool held = false;
    ~InBuffer() {
        if (held) PyBuffer_Release(&view);
    }
    bool get(PyObject* object) {
        held = PyObject_GetBuffer(object, &view, PyBUF_C_CONTIGUOUS) == 0;
        return held;
    }
    template <typename T>
    const T* as() const { return static_cast<const T*>(view.buf); }
    Py_ssize_t count(size_t item) const { return view.len / static_cast<Py_ssize_t>(item); }
};

inline uint64_t load8(const uint8_t* p) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    return word;
}

// A reference the function owns, dropped when it goes out of scope unless ``release``
// hands it on (to Py_BuildValue's "N", which takes it even when building fails).
class OwnedRef {
public:
    OwnedRef() = default;
    explicit OwnedRef(PyObject* object) : object_(object) {}
    OwnedRef(const OwnedRef&) = delete;
    OwnedRef& operator=(const OwnedRef&) = delete;
    ~OwnedRef() { Py_XDECREF(object_); }
    explicit operator bool() const { return object_ != nullptr; }
    PyObject* get() const { return object_; }
    PyObject* release() { return std::exchange(object_, nullptr); }

protected:
    PyObject* object_ = nullptr;
};

// A new bytes object that a loop fills without the GIL, then shrinks to what it wrote.
class OutBytes : public OwnedRef {
public:
    bool allocate(Py_ssize_t size) {
        Py_XDECREF(object_);
        object_ = PyBytes_FromStringAndSize(nullptr, size);
        return object_ != nullptr;
    }
    template <typename T>
    T* data() const { return reinterpret_cast<T*>(PyBytes_AS_STRING(object_)); }
    // The private _PyBytes_Resize because the C API has no public way to shorten a bytes
    // object in place: PyBytes_FromStringAndSize would copy the whole block. The object is
    // new (one reference), which is what it requires; on failure it drops the object.
    bool shrink(Py_ssize_t size) { return _PyBytes_Resize(&object_, size) == 0; }
};

// ---------------------------------------------------------------- dates

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {  // H. Hinnant's algorithm
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

inline unsigned digit(uint8_t c) { return static_cast<unsigned>(c) - '0'; }

// ``YYYY-MM-DD`` (year 1 to 9999) as days since 1970-01-01; false if it is not exactly that.
bool parse_date(const uint8_t* p, int32_t& days) {
    for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (digit(p[i]) > 9) return false;
    if (p[4] != '-' || p[7] != '-') return false;
    const int64_t year = digit(p[0]) * 1000 + digit(p[1]) * 100 + digit(p[2]) * 10 + digit(p[3]);
    const unsigned month = digit(p[5]) * 10 + digit(p[6]);
    const unsigned day = digit(p[8]) * 10 + digit(p[9]);
    static const unsigned month_days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1) return false;
    if (day > month_days[month] + (month == 2 && is_leap(year))) return false;
    days = static_cast<int32_t>(days_from_civil(year, month, day));
    return true;
}

// ---------------------------------------------------------------- UTF-8

// Well-formed UTF-8 as Python and Arrow define it: no overlong forms, no surrogates,
// nothing above U+10FFFF.
bool valid_utf8(const uint8_t* s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const uint8_t c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t width;
        uint8_t low = 0x80, high = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            width = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            width = 3;
            if (c == 0xE0) low = 0xA0;
            if (c == 0xED) high = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            width = 4;
            if (c == 0xF0) low = 0x90;
            if (c == 0xF4) high = 0x8F;
        } else {
            return false;
        }
        if (n - i < width || s[i + 1] < low || s[i + 1] > high) return false;
        for (size_t k = 2; k < width; ++k)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += width;
    }
    return true;
}

// ---------------------------------------------------------------- parse_plain

// Rows of the simple, common form only: ``song,YYYY-MM-DD,digits`` with LF line ends,
// no quotes, no CR, no padding. Returns false at the first byte outside that form; the
// caller then parses the block with Arrow, which handles (and reports) everything else.
struct PlainRows {
    int32_t* offsets;
    uint8_t* songs;
    int32_t* days;
    int64_t* plays;
    Py_ssize_t rows = 0;
    Py_ssize_t song_bytes = 0;
};

// The columns of PlainRows as new bytes: allocated for at most ``max_rows`` rows and
// ``max_song_bytes`` bytes of songs, then shrunk to the rows a loop filled.
struct OutRows {
    OutBytes offsets, songs, days, plays;
    bool allocate(Py_ssize_t max_rows, Py_ssize_t max_song_bytes) {
        return offsets.allocate((max_rows + 1) * 4) && songs.allocate(max_song_bytes) && days.allocate(max_rows * 4) &&
               plays.allocate(max_rows * 8);
    }
    PlainRows to_fill() const {
        return {offsets.data<int32_t>(), songs.data<uint8_t>(), days.data<int32_t>(), plays.data<int64_t>()};
    }
    bool shrink(const PlainRows& filled) {
        return offsets.shrink((filled.rows + 1) * 4) && songs.shrink(filled.song_bytes) && days.shrink(filled.rows * 4) &&
               plays.shrink(filled.rows * 8);
    }
};

bool parse_plain_rows(const uint8_t* p, const uint8_t* end, PlainRows& out) {
    out.offsets[0] = 0;
    while (p < end) {
        if (*p == '\n') {  // blank line
            ++p;
            continue;
        }
        const uint8_t* song = p;
        uint8_t high = 0;
        for (; p < end && *p != ',' && *p != '\n' && *p != '"' && *p != '\r'; ++p) high |= *p;
        const bool ascii = high < 0x80;
        const size_t song_len = static_cast<size_t>(p - song);
        if (p == end || *p != ',' || song_len == 0 || (!ascii && !valid_utf8(song, song_len))) return false;
        ++p;
        if (end - p < 11 || p[10] != ',' || !parse_date(p, out.days[out.rows])) return false;
        p += 11;
        const uint8_t* digits = p;
        uint64_t value = 0;
        for (unsigned d; p < end && (d = digit(*p)) <= 9; ++p) value = value * 10 + d;  // may wrap: checked below
        if (p == digits || (p < end && *p != '\n')) return false;
        if (p - digits >= 19) {  // could exceed int64: redo with checks
            value = 0;
            for (const uint8_t* q = digits; q < p; ++q) {
                if (value > (kMaxInt64 - digit(*q)) / 10) return false;
                value = value * 10 + digit(*q);
            }
        }
        if (p < end) ++p;  // the newline
        std::memcpy(out.songs + out.song_bytes, song, song_len);
        out.song_bytes += static_cast<Py_ssize_t>(song_len);
        if (out.song_bytes > INT32_MAX) return false;
        out.plays[out.rows] = static_cast<int64_t>(value);
        out.offsets[++out.rows] = static_cast<int32_t>(out.song_bytes);
    }
    return true;
}

PyObject* parse_plain(PyObject*, PyObject* args) {
    PyObject* data_object;
    if (!PyArg_ParseTuple(args, "O", &data_object)) return nullptr;
    InBuffer data;
    if (!data.get(data_object)) return nullptr;
    const auto* begin = data.as<uint8_t>();
    const auto* end = begin + data.view.len;
    Py_ssize_t max_rows = 1;
    Py_BEGIN_ALLOW_THREADS
    for (const uint8_t* p = begin; (p = static_cast<const uint8_t*>(std::memchr(p, '\n', end - p))); ++p)
        ++max_rows;
    Py_END_ALLOW_THREADS
    OutRows out;
    if (!out.allocate(max_rows, data.view.len)) return nullptr;
    PlainRows rows = out.to_fill();
    bool plain;
    Py_BEGIN_ALLOW_THREADS
    plain = parse_plain_rows(begin, end, rows);
    Py_END_ALLOW_THREADS
    if (!plain) Py_RETURN_NONE;
    if (!out.shrink(rows)) return nullptr;
    return Py_BuildValue("nnNNNN", max_rows - 1, rows.rows, out.offsets.release(), out.songs.release(),
                         out.days.release(), out.plays.release());
}

// ---------------------------------------------------------------- parse_rows

// Every form the input rules allow: RFC 4180 quoting (a quoted field may hold commas, quotes
// written "" and line ends), LF or CRLF line ends, blank lines. Stricter than most readers
// on purpose, so that no row is read in a way the writer did not mean: a quote inside an
// unquoted field, text after a closing quote, a quote never closed and a carriage return
// that is not part of CRLF are errors, not guesses.
enum Problem : int {
    kQuoteInUnquoted = 1,
    kTextAfterQuote,
    kUnclosedQuote,
    kBareCarriageReturn,
    kColumns,
    kNotUtf8,
    kEmptySong,
    kNotDate,
    kNotInteger,
    kTooLarge,
};

struct FieldEnd {
    const uint8_t* at;  // the delimiter after the field (',', '\n', '\r' of CRLF, or the end)
    Problem problem;    // 0 when the field is well formed
    const uint8_t* problem_at;  // where a structural problem was seen
};

// One field starting at ``p``, unquoted into ``out``; ``*length`` is its unquoted length.
FieldEnd read_field(const uint8_t* p, const uint8_t* end, uint8_t* out, size_t* length) {
    size_t n = 0;
    if (p < end && *p == '"') {
        ++p;
        while (true) {
            const auto* quote = static_cast<const uint8_t*>(std::memchr(p, '"', end - p));
            if (!quote) return {end, kUnclosedQuote, end};
            std::memcpy(out + n, p, quote - p);
            n += quote - p;
            p = quote + 1;
            if (p < end && *p == '"') {  // an escaped quote
                out[n++] = '"';
                ++p;
                continue;
            }
            break;
        }
        *length = n;
        if (p == end || *p == ',' || *p == '\n') return {p, Problem(0), nullptr};
        if (*p == '\r') {
            if (p + 1 < end && p[1] == '\n') return {p, Problem(0), nullptr};
            return {p, kBareCarriageReturn, p};
        }
        return {p, kTextAfterQuote, p};
    }
    const uint8_t* start = p;
    while (p < end && *p != ',' && *p != '\n' && *p != '\r' && *p != '"') ++p;
    std::memcpy(out, start, p - start);
    *length = p - start;
    if (p == end || *p == ',' || *p == '\n') return {p, Problem(0), nullptr};
    if (*p == '"') return {p, kQuoteInUnquoted, p};
    if (p + 1 < end && p[1] == '\n') return {p, Problem(0), nullptr};
    return {p, kBareCarriageReturn, p};
}

// The end of the field that starts at ``p`` as it was written (for an error message).
const uint8_t* raw_field_end(const uint8_t* p, const uint8_t* end, bool quoted_until_end) {
    if (quoted_until_end) return end;
    while (p < end && *p != ',' && *p != '\n') ++p;
    return p;
}

// Past the line end at ``p`` (LF, CRLF or the end of the data).
inline const uint8_t* past_line_end(const uint8_t* p, const uint8_t* end) {
    if (p == end) return p;
    return p + (*p == '\r' ? 2 : 1);
}

struct RowProblem {
    Problem problem = Problem(0);
    const uint8_t* record = nullptr;  // start of the bad record
    int column = -1;                  // 0-based field, -1 for the record as a whole
    std::vector<uint8_t> value;       // the offending value (unquoted, or as written)
    const uint8_t* at = nullptr;      // where a malformed field went wrong
};

// Skips blank lines (LF or CRLF) from ``p``.
inline const uint8_t* skip_blank_lines(const uint8_t* p, const uint8_t* end) {
    while (p < end) {
        if (*p == '\n') ++p;
        else if (*p == '\r' && p + 1 < end && p[1] == '\n') p += 2;
        else break;
    }
    return p;
}

// Splits the record at ``p`` into fields, each unquoted into ``out`` (as long as the record);
// ``bounds`` gets each field's end in ``out``. Returns past the record's line end, or
// nullptr with ``bad`` filled in (column and value).
const uint8_t* split_fields(const uint8_t* p, const uint8_t* end, uint8_t* out, std::vector<size_t>& bounds,
                            RowProblem& bad) {
    const uint8_t* record = p;
    size_t used = 0;
    bounds.clear();
    while (true) {
        size_t length;
        const FieldEnd field = read_field(p, end, out + used, &length);
        if (field.problem) {
            const bool to_end = field.problem == kUnclosedQuote;
            bad.problem = field.problem;
            bad.record = record;
            bad.column = static_cast<int>(bounds.size());
            bad.at = field.problem_at;
            bad.value.assign(p, raw_field_end(field.problem_at, end, to_end));
            return nullptr;
        }
        used += length;
        bounds.push_back(used);
        p = field.at;
        if (p == end || *p != ',') return past_line_end(p, end);
        ++p;
    }
}

inline bool parse_plays(const uint8_t* s, size_t n, uint64_t& value, Problem& problem) {
    value = 0;
    if (n == 0) return problem = kNotInteger, false;
    for (size_t i = 0; i < n; ++i)
        if (digit(s[i]) > 9) return problem = kNotInteger, false;
    for (size_t i = 0; i < n; ++i) {
        if (value > (kMaxInt64 - digit(s[i])) / 10) return problem = kTooLarge, false;
        value = value * 10 + digit(s[i]);
    }
    return true;
}

// Rows of a block in any allowed form, validated; the first invalid record stops the loop.
// ``lines`` (optional) gets each row's 0-based line within the block.
bool parse_any_rows(const uint8_t* p, const uint8_t* end, PlainRows& out, int64_t* lines, RowProblem& bad) {
    std::vector<size_t> bounds;
    const uint8_t* line_counted = p;
    int64_t line = 0;
    out.offsets[0] = 0;
    while ((p = skip_blank_lines(p, end)) < end) {
        const uint8_t* record = p;
        uint8_t* text = out.songs + out.song_bytes;  // the fields go after the songs kept so far
        p = split_fields(record, end, text, bounds, bad);
        if (!p) return false;
        auto fail = [&](Problem problem, int column) {
            bad.problem = problem;
            bad.record = record;
            bad.column = column;
            if (column >= 0) {
                const size_t from = column ? bounds[column - 1] : 0;
                bad.value.assign(text + from, text + bounds[column]);
            } else {
                bad.value.assign(record, p);
                while (!bad.value.empty() && (bad.value.back() == '\n' || bad.value.back() == '\r')) bad.value.pop_back();
            }
            return false;
        };
        if (bounds.size() != 3) {
            fail(kColumns, -1);
            bad.column = static_cast<int>(bounds.size());  // the column count, for the message
            return false;
        }
        const size_t song_len = bounds[0];
        const size_t date_len = bounds[1] - bounds[0];
        for (int column = 0; column < 3; ++column) {
            const size_t from = column ? bounds[column - 1] : 0;
            if (!valid_utf8(text + from, bounds[column] - from)) return fail(kNotUtf8, column);
        }
        if (song_len == 0) return fail(kEmptySong, 0);
        if (date_len != 10 || !parse_date(text + bounds[0], out.days[out.rows])) return fail(kNotDate, 1);
        uint64_t value;
        Problem problem;
        if (!parse_plays(text + bounds[1], bounds[2] - bounds[1], value, problem)) return fail(problem, 2);
        if (lines) {
            for (const uint8_t* q = line_counted; (q = static_cast<const uint8_t*>(std::memchr(q, '\n', record - q))); ++q)
                ++line;
            line_counted = record;
            lines[out.rows] = line;
        }
        out.song_bytes += static_cast<Py_ssize_t>(song_len);
        out.plays[out.rows] = static_cast<int64_t>(value);
        out.offsets[++out.rows] = static_cast<int32_t>(out.song_bytes);
    }
    return true;
}

inline Py_ssize_t count_newlines(const uint8_t* p, const uint8_t* end) {
    Py_ssize_t n = 0;
    for (; (p = static_cast<const uint8_t*>(std::memchr(p, '\n', end - p))); ++p) ++n;
    return n;
}

PyObject* problem_tuple(const RowProblem& bad, Py_ssize_t line) {
    return Py_BuildValue("niiy#", line, static_cast<int>(bad.problem), bad.column,
                         bad.value.empty() ? "" : reinterpret_cast<const char*>(bad.value.data()),
                         static_cast<Py_ssize_t>(bad.value.size()));
}

PyObject* parse_rows(PyObject*, PyObject* args) {
    PyObject* data_object;
    int want_lines = 0;
    if (!PyArg_ParseTuple(args, "O|p", &data_object, &want_lines)) return nullptr;
    InBuffer data;
    if (!data.get(data_object)) return nullptr;
    const auto* begin = data.as<uint8_t>();
    const auto* end = begin + data.view.len;
    if (data.view.len > INT32_MAX) {  // Arrow's string offsets are 32-bit
        PyErr_SetString(PyExc_ValueError, "a block of more than 2 GiB of rows cannot be parsed at once");
        return nullptr;
    }
    Py_ssize_t newlines;
    Py_BEGIN_ALLOW_THREADS
    newlines = count_newlines(begin, end);
    Py_END_ALLOW_THREADS
    const Py_ssize_t max_rows = newlines + 1;
    OutRows out;
    OutBytes lines;
    if (!out.allocate(max_rows, data.view.len) || (want_lines && !lines.allocate(max_rows * 8))) return nullptr;
    PlainRows rows = out.to_fill();
    int64_t* row_lines = want_lines ? lines.data<int64_t>() : nullptr;
    RowProblem bad;
    bool valid;
    Py_ssize_t bad_line = 0;
    Py_BEGIN_ALLOW_THREADS
    valid = parse_any_rows(begin, end, rows, row_lines, bad);
    if (!valid) bad_line = count_newlines(begin, bad.record);
    Py_END_ALLOW_THREADS
    if (!valid) return Py_BuildValue("nOON", newlines, Py_None, Py_None, problem_tuple(bad, bad_line));
    if (!out.shrink(rows) || (want_lines && !lines.shrink(rows.rows * 8))) return nullptr;
    return Py_BuildValue("n(nNNNN)NO", newlines, rows.rows, out.offsets.release(), out.songs.release(),
                         out.days.release(), out.plays.release(), want_lines ? lines.release() : Py_NewRef(Py_None),
                         Py_None);
}

// The first non-blank record of ``data``: (start, end past its line end, [fields]) or
// (start, None, problem) when it is malformed; None when ``data`` ends inside it and more
// of the file follows (``complete`` false).
PyObject* first_record(PyObject*, PyObject* args) {
    PyObject* data_object;
    int complete;
    if (!PyArg_ParseTuple(args, "Op", &data_object, &complete)) return nullptr;
    InBuffer data;
    if (!data.get(data_object)) return nullptr;
    const auto* begin = data.as<uint8_t>();
    const auto* end = begin + data.view.len;
    const uint8_t* start = skip_blank_lines(begin, end);
    std::vector<uint8_t> text(static_cast<size_t>(end - start) + 1);
    std::vector<size_t> bounds;
    RowProblem bad;
    const uint8_t* after = split_fields(start, end, text.data(), bounds, bad);
    // Without the rest of the file, a record that reaches the end of the data may go on.
    const bool may_go_on = after ? after == end && (after == start || end[-1] != '\n')
                                 : bad.problem == kUnclosedQuote || (bad.problem == kBareCarriageReturn && bad.at + 1 == end);
    if (!complete && may_go_on) Py_RETURN_NONE;
    if (!after) return Py_BuildValue("nON", static_cast<Py_ssize_t>(start - begin), Py_None, problem_tuple(bad, 0));
    OwnedRef fields(PyList_New(static_cast<Py_ssize_t>(bounds.size())));
    if (!fields) return nullptr;
    size_t from = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
        PyObject* field = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(text.data() + from),
                                                    static_cast<Py_ssize_t>(bounds[i] - from));
        if (!field) return nullptr;
        PyList_SET_ITEM(fields.get(), static_cast<Py_ssize_t>(i), field);
        from = bounds[i];
    }
    return Py_BuildValue("nnN", static_cast<Py_ssize_t>(start - begin), static_cast<Py_ssize_t>(after - begin),
                         fields.release());
}

// ---------------------------------------------------------------- hashing, partitioning

// FNV-1a over the bytes, then MurmurHash3's finaliser so that the low bits (the bucket)
// depend on every byte. Byte by byte: the same value on every machine.
inline uint64_t hash_bytes(const uint8_t* s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    for (size_t i = 0; i < n; ++i) h = (h ^ s[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

// The string column of a call: ``count`` strings, string i at data[offsets[i]:offsets[i+1]].
struct Strings {
    InBuffer offsets_buffer, data_buffer;
    const int32_t* offsets = nullptr;
    const uint8_t* data = nullptr;
    const uint8_t* data_end = nullptr;
    Py_ssize_t count = 0;
    bool get(PyObject* offsets_object, PyObject* data_object) {
        if (!offsets_buffer.get(offsets_object) || !data_buffer.get(data_object)) return false;
        offsets = offsets_buffer.as<int32_t>();
        data = data_buffer.as<uint8_t>();
        data_end = data + data_buffer.view.len;
        count = offsets_buffer.count(4) - 1;
        if (count < 0) {
            PyErr_SetString(PyExc_ValueError, "string offsets must hold at least one value");
            return false;
        }
        return true;
    }
    size_t length(Py_ssize_t i) const { return static_cast<size_t>(offsets[i + 1] - offsets[i]); }
    const uint8_t* at(Py_ssize_t i) const { return data + offsets[i]; }
};

// A table's columns as a call receives them: one tuple (song offsets, song bytes, days,
// plays), checked for equal lengths.
struct RowColumns {
    Strings strings;
    InBuffer days, plays;
    bool get(PyObject* columns, const char* function) {
        PyObject *offsets_object, *data_object, *days_object, *plays_object;
        if (!PyArg_ParseTuple(columns, "OOOO", &offsets_object, &data_object, &days_object, &plays_object)) return false;
        if (!strings.get(offsets_object, data_object) || !days.get(days_object) || !plays.get(plays_object)) return false;
        if (days.count(4) != strings.count || plays.count(8) != strings.count || strings.count > UINT32_MAX) {
            PyErr_Format(PyExc_ValueError, "%s: columns of different lengths or too many rows", function);
            return false;
        }
        return true;
    }
};

PyObject* hash_strings(PyObject*, PyObject* args) {
    PyObject *offsets_object, *data_object;
    if (!PyArg_ParseTuple(args, "OO", &offsets_object, &data_object)) return nullptr;
    Strings strings;
    if (!strings.get(offsets_object, data_object)) return nullptr;
    OutBytes hashes;
    if (!hashes.allocate(strings.count * 8)) return nullptr;
    auto* out = hashes.data<uint64_t>();
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < strings.count; ++i) out[i] = hash_bytes(strings.at(i), strings.length(i));
    Py_END_ALLOW_THREADS
    return hashes.release();
}

// Rows grouped by bucket (hash modulo buckets), input order kept within a bucket.
PyObject* partition(PyObject*, PyObject* args) {
    PyObject *columns, *hashes_object;
    Py_ssize_t buckets;
    if (!PyArg_ParseTuple(args, "OOn", &columns, &hashes_object, &buckets)) return nullptr;
    RowColumns rows;
    InBuffer hashes;
    if (!rows.get(columns, "partition") || !hashes.get(hashes_object)) return nullptr;
    const Strings& songs = rows.strings;
    const InBuffer &days = rows.days, &plays = rows.plays;
    const Py_ssize_t n = songs.count;
    if (buckets < 1 || hashes.count(8) != n) {
        PyErr_SetString(PyExc_ValueError, "partition: a hash per row and at least one bucket are needed");
        return nullptr;
    }
    std::vector<uint32_t> bucket_of(n);
    std::vector<int64_t> row_start(buckets + 1, 0), byte_start(buckets + 1, 0);
    Py_BEGIN_ALLOW_THREADS
    const auto* hash = hashes.as<uint64_t>();
    for (Py_ssize_t i = 0; i < n; ++i) {
        const auto b = static_cast<uint32_t>(hash[i] % static_cast<uint64_t>(buckets));
        bucket_of[i] = b;
        row_start[b + 1] += 1;
        byte_start[b + 1] += static_cast<int64_t>(songs.length(i));
    }
    for (Py_ssize_t b = 0; b < buckets; ++b) {
        row_start[b + 1] += row_start[b];
        byte_start[b + 1] += byte_start[b];
    }
    Py_END_ALLOW_THREADS
    OutRows out;
    OutBytes out_buckets;
    if (!out.allocate(n, byte_start[buckets]) || !out_buckets.allocate((buckets + 1) * 8)) return nullptr;
    Py_BEGIN_ALLOW_THREADS
    std::memcpy(out_buckets.data<int64_t>(), row_start.data(), (buckets + 1) * 8);
    auto* offsets = out.offsets.data<int32_t>();
    auto* data = out.songs.data<uint8_t>();
    auto* day_out = out.days.data<int32_t>();
    auto* plays_out = out.plays.data<int64_t>();
    const auto* day_in = days.as<int32_t>();
    const auto* plays_in = plays.as<int64_t>();
    std::vector<int64_t> next_row(row_start.begin(), row_start.end() - 1);
    std::vector<int64_t> next_byte(byte_start.begin(), byte_start.end() - 1);
    for (Py_ssize_t i = 0; i < n; ++i) {
        const uint32_t b = bucket_of[i];
        const int64_t row = next_row[b]++;
        const size_t length = songs.length(i);
        offsets[row] = static_cast<int32_t>(next_byte[b]);
        std::memcpy(data + next_byte[b], songs.at(i), length);
        next_byte[b] += static_cast<int64_t>(length);
        day_out[row] = day_in[i];
        plays_out[row] = plays_in[i];
    }
    offsets[n] = static_cast<int32_t>(byte_start[buckets]);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("NNNNN", out.offsets.release(), out.songs.release(), out.days.release(), out.plays.release(),
                         out_buckets.release());
}

// ---------------------------------------------------------------- sum_sort_render

bool needs_quotes(const uint8_t* s, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') return true;
    return false;
}

struct Entry {
    uint64_t key;  // song rank, then day (relative to the bucket's first)
    int64_t plays;
};

// The large arrays of a call, kept by the thread for its next call: a Dask worker thread
// runs one task after another, and fresh memory costs a page fault per 4 KiB (more than the
// work done on it, on virtual machines). A thread keeps about 36 bytes per row of its
// largest bucket or block.
struct Workspace {
    std::vector<uint32_t> codes;
    std::vector<Entry> entries, scratch;
};

Workspace& workspace() {
    thread_local Workspace reused;
    return reused;
}

// The distinct songs of a bucket, each row's song as a code into them, and each code's
// rank in UTF-8 byte order. Sorting the (few) distinct songs once turns the row sort into
// an integer sort, and rows never need their song bytes again until rendering.
struct SongDictionary {
    struct Song {
        uint64_t head;  // the first 8 bytes, zero padded: equal songs of <= 8 bytes compare here
        int32_t start;
        int32_t length;
        bool quoted;  // holds a comma, quote, CR or LF, so RFC 4180 quotes it
    };
    std::vector<uint32_t>& code_of_row = workspace().codes;
    std::vector<Song> songs;  // of each code, in first-seen order
    std::vector<uint32_t> rank;  // of each code
    std::vector<uint32_t> by_rank;  // code of each rank

    // The first 8 bytes of a song, zero padded: one unaligned load and a mask where the
    // buffer has 8 bytes left, which is every song but the last few.
    static uint64_t head_of(const uint8_t* s, size_t length, const uint8_t* end) {
        if (end - s >= 8) return length >= 8 ? load8(s) : load8(s) & ((uint64_t{1} << (8 * length)) - 1);
        uint64_t head = 0;
        std::memcpy(&head, s, std::min<size_t>(length, 8));
        return head;
    }

    // A word at a time: this hash only lives for one call, so it need not be portable.
    static uint32_t hash_of(uint64_t tag, const uint8_t* s, size_t length) {
        uint64_t h = tag * 0x9E3779B97F4A7C15ULL;
        for (size_t i = 8; i < length; i += 8) {
            uint64_t word = 0;
            std::memcpy(&word, s + i, std::min<size_t>(length - i, 8));
            h = (h ^ (h >> 29) ^ word) * 0xBF58476D1CE4E5B9ULL;
        }
        return static_cast<uint32_t>(h >> 32);  // the high half: it depends on every input bit
    }

    void build(const Strings& strings) {
        const auto n = static_cast<size_t>(strings.count);
        code_of_row.resize(n);
        // A slot holds a tag that, for songs of up to 7 bytes, is the whole song (bytes and
        // length): those, nearly all songs, compare without a second memory access.
        struct Slot {
            uint64_t tag;
            uint32_t hash;
            uint32_t code_plus_one;  // 0: empty
        };
        std::vector<Slot> slots(1 << 12);
        size_t mask = slots.size() - 1;
        for (size_t row = 0; row < n; ++row) {
            const uint8_t* song = strings.at(row);
            const size_t length = strings.length(row);
            const uint64_t head = head_of(song, length, strings.data_end);
            const uint64_t tag = length < 8 ? head | (uint64_t{length} << 56) : head;
            const uint32_t hash = hash_of(tag, song, length);
            size_t slot = hash & mask;
            for (;; slot = (slot + 1) & mask) {
                const Slot& s = slots[slot];
                if (s.code_plus_one == 0) break;
                if (s.tag != tag || s.hash != hash) continue;
                if (length < 8) break;
                const Song& other = songs[s.code_plus_one - 1];
                if (static_cast<size_t>(other.length) == length && std::memcmp(strings.data + other.start, song, length) == 0)
                    break;
            }
            if (slots[slot].code_plus_one) {
                code_of_row[row] = slots[slot].code_plus_one - 1;
                continue;
            }
            songs.push_back({head, strings.offsets[row], static_cast<int32_t>(length), needs_quotes(song, length)});
            slots[slot] = {tag, hash, static_cast<uint32_t>(songs.size())};
            code_of_row[row] = static_cast<uint32_t>(songs.size() - 1);
            if (songs.size() * 2 > slots.size()) {  // grow: keep the table at most half full
                std::vector<Slot> bigger(slots.size() * 2);
                mask = bigger.size() - 1;
                for (const Slot& s : slots) {
                    if (s.code_plus_one == 0) continue;
                    size_t at = s.hash & mask;
                    while (bigger[at].code_plus_one) at = (at + 1) & mask;
                    bigger[at] = s;
                }
                slots.swap(bigger);
            }
        }
        by_rank.resize(songs.size());
        for (size_t code = 0; code < by_rank.size(); ++code) by_rank[code] = static_cast<uint32_t>(code);
        std::sort(by_rank.begin(), by_rank.end(), [&](uint32_t a, uint32_t b) {
            const Song &sa = songs[a], &sb = songs[b];
            const int c = std::memcmp(strings.data + sa.start, strings.data + sb.start, std::min(sa.length, sb.length));
            return c ? c < 0 : sa.length < sb.length;
        });
        rank.resize(songs.size());
        for (size_t r = 0; r < by_rank.size(); ++r) rank[by_rank[r]] = static_cast<uint32_t>(r);
    }
};


// Stable LSD radix sort on the low ``key_bits`` bits, in passes of equal width of at
// most 11 bits (the counts stay in L1); a pass whose digit is the same everywhere is skipped.
void sort_entries(std::vector<Entry>& entries, int key_bits) {
    if (key_bits == 0) return;
    const int passes = (key_bits + 10) / 11;
    const int digit_bits = (key_bits + passes - 1) / passes;
    const size_t digits = size_t{1} << digit_bits;
    const uint64_t mask = digits - 1;
    std::vector<size_t> counts(static_cast<size_t>(passes) * digits, 0);
    for (const Entry& entry : entries)
        for (int pass = 0; pass < passes; ++pass) ++counts[pass * digits + ((entry.key >> (pass * digit_bits)) & mask)];
    std::vector<Entry>& scratch = workspace().scratch;
    scratch.resize(entries.size());
    for (int pass = 0; pass < passes; ++pass) {
        size_t* count = &counts[pass * digits];
        if (std::find(count, count + digits, entries.size()) != count + digits) continue;
        for (size_t d = 0, total = 0; d < digits; ++d) {
            const size_t c = count[d];
            count[d] = total;
            total += c;
        }
        const int shift = pass * digit_bits;
        for (const Entry& entry : entries) scratch[count[(entry.key >> shift) & mask]++] = entry;
        entries.swap(scratch);
    }
}

constexpr size_t kDateLength = 10;
constexpr size_t kMaxDecimalLength = 19;  // of a non-negative int64

// ``YYYY-MM-DD`` of each day of a bucket's range, written once.
std::vector<char> date_texts(int32_t first_day, size_t days) {
    std::vector<char> texts(days * kDateLength);
    for (size_t d = 0; d < days; ++d) {
        int64_t year;
        unsigned month, day;
        civil_from_days(first_day + static_cast<int64_t>(d), year, month, day);
        char text[16];
        std::snprintf(text, sizeof text, "%04u-%02u-%02u", static_cast<unsigned>(year) % 10000, month % 100, day % 100);
        std::memcpy(&texts[d * kDateLength], text, kDateLength);
    }
    return texts;
}

// Writes ``song`` (quoted where RFC 4180 needs it). Short songs go as one 8-byte store:
// the caller's buffer has room past every line.
char* write_song(char* p, const SongDictionary::Song& song, const uint8_t* data) {
    const auto length = static_cast<size_t>(song.length);
    if (!song.quoted) {
        if (length <= 8)
            std::memcpy(p, &song.head, 8);
        else
            std::memcpy(p, data + song.start, length);
        return p + length;
    }
    *p++ = '"';
    for (const uint8_t* s = data + song.start; s < data + song.start + length; ++s) {
        if (*s == '"') *p++ = '"';
        *p++ = static_cast<char>(*s);
    }
    *p++ = '"';
    return p;
}

char* write_decimal(char* p, uint64_t v) {
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char digits[20];
    char* end = digits + sizeof digits;
    char* q = end;
    while (v >= 100) {
        q -= 2;
        std::memcpy(q, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        q -= 2;
        std::memcpy(q, pairs + 2 * v, 2);
    } else {
        *--q = static_cast<char>('0' + v);
    }
    std::memcpy(p, q, 20);  // fixed size: one copy; only end - q bytes count
    return p + (end - q);
}

// One bucket: ``sort`` orders its rows by (song, day) and bounds the output size;
// ``render`` sums equal neighbours and writes each line in the same pass.
struct BucketTotals {
    explicit BucketTotals(const Strings& rows_strings) : strings(rows_strings) {}

    const Strings& strings;
    SongDictionary songs;
    std::vector<Entry>& entries = workspace().entries;
    int32_t first_day = 0;
    int64_t day_span = 0;
    int day_bits = 0;
    // Filled by render:
    size_t body_length = 0, lines = 0, song_count = 0;
    bool overflow = false;
    uint64_t overflowing_key = 0;

    const uint8_t* song_bytes(uint64_t key, size_t& length) const {
        const SongDictionary::Song& song = songs.songs[songs.by_rank[key >> day_bits]];
        length = static_cast<size_t>(song.length);
        return strings.data + song.start;
    }
    int32_t day(uint64_t key) const { return first_day + static_cast<int32_t>(key & ((uint64_t{1} << day_bits) - 1)); }

    // The dictionary and the day range; false when there are no rows.
    bool prepare(const int32_t* days) {
        const auto n = static_cast<size_t>(strings.count);
        entries.clear();  // the thread's array may still hold the last call's rows
        if (n == 0) return false;
        songs.build(strings);
        const auto [low, high] = std::minmax_element(days, days + n);
        first_day = *low;
        day_span = static_cast<int64_t>(*high) - first_day + 1;
        while ((int64_t{1} << day_bits) < day_span) ++day_bits;
        return true;
    }

    uint64_t key_of(size_t row, const int32_t* days) const {
        return (uint64_t{songs.rank[songs.code_of_row[row]]} << day_bits) | static_cast<uint64_t>(days[row] - first_day);
    }

    // Every row as an entry, sorted by (song, day).
    void sort(const int32_t* days, const int64_t* plays) {
        if (!prepare(days)) return;
        const auto n = static_cast<size_t>(strings.count);
        entries.resize(n);
        for (size_t row = 0; row < n; ++row) entries[row] = {key_of(row, days), plays[row]};
        int rank_bits = 0;
        while ((size_t{1} << rank_bits) < songs.by_rank.size()) ++rank_bits;
        sort_entries(entries, rank_bits + day_bits);
    }

    // For ``combine``: one entry per (song, day) with its total, sorted; false when a total
    // does not fit in 64 bits. When the (song, day) grid is no larger than the rows, the
    // totals add up in place in a dense grid (no sort); otherwise sorted rows are summed.
    bool sum_groups(const int32_t* days, const int64_t* plays) {
        if (!prepare(days)) return true;
        const auto n = static_cast<size_t>(strings.count);
        const size_t cells = songs.songs.size() * static_cast<size_t>(day_span);
        if (cells <= n) {
            std::vector<Entry>& grid = workspace().scratch;  // key: rows seen, plays: total
            grid.assign(cells, Entry{0, 0});
            for (size_t row = 0; row < n; ++row) {
                Entry& cell = grid[songs.rank[songs.code_of_row[row]] * static_cast<size_t>(day_span) + (days[row] - first_day)];
                cell.key += 1;
                if (__builtin_add_overflow(cell.plays, plays[row], &cell.plays)) return false;
            }
            for (size_t c = 0; c < cells; ++c) {
                if (!grid[c].key) continue;
                const uint64_t rank = c / static_cast<size_t>(day_span), day_offset = c % static_cast<size_t>(day_span);
                entries.push_back({(rank << day_bits) | day_offset, grid[c].plays});
            }
            return true;
        }
        sort(days, plays);
        size_t groups = 0;
        for (size_t i = 0; i < entries.size(); ++groups) {
            const uint64_t key = entries[i].key;
            int64_t total = 0;
            for (; i < entries.size() && entries[i].key == key; ++i)
                if (__builtin_add_overflow(total, entries[i].plays, &total)) return false;
            entries[groups] = {key, total};
        }
        entries.resize(groups);
        return true;
    }

    size_t group_song_bytes() const {
        size_t bytes = 0;
        for (const Entry& group : entries) bytes += static_cast<size_t>(songs.songs[songs.by_rank[group.key >> day_bits]].length);
        return bytes;
    }

    // The groups of ``sum_groups`` as Arrow columns, with each row's song hash.
    void emit_groups(int32_t* offsets, uint8_t* data, int32_t* days, int64_t* totals, uint64_t* hashes) const {
        size_t bytes = 0;
        offsets[0] = 0;
        uint64_t song = ~uint64_t{0}, hash = 0;
        for (size_t group = 0; group < entries.size(); ++group) {
            const uint64_t key = entries[group].key;
            const SongDictionary::Song& entry = songs.songs[songs.by_rank[key >> day_bits]];
            const auto length = static_cast<size_t>(entry.length);
            if (key >> day_bits != song) {
                song = key >> day_bits;
                hash = hash_bytes(strings.data + entry.start, length);
            }
            std::memcpy(data + bytes, strings.data + entry.start, length);
            bytes += length;
            offsets[group + 1] = static_cast<int32_t>(bytes);
            days[group] = day(key);
            totals[group] = entries[group].plays;
            hashes[group] = hash;
        }
    }

    // ``song_totals``: each song's plays over all its dates, capped at the largest int64 (a
    // summary figure; the (song, date) totals written to ``body`` are exact or an error).
    void render(char* body, int64_t* line_offsets, int64_t* song_starts, int64_t* song_totals) {
        const size_t n = entries.size();
        const uint64_t day_mask = (uint64_t{1} << day_bits) - 1;
        const std::vector<char> dates = date_texts(first_day, static_cast<size_t>(day_span));
        char* p = body;
        uint64_t song = ~uint64_t{0};
        for (size_t i = 0; i < n;) {
            const uint64_t key = entries[i].key;
            uint64_t total = 0;
            for (; i < n && entries[i].key == key; ++i) {
                total += static_cast<uint64_t>(entries[i].plays);
                if (total > kMaxInt64) {
                    overflow = true;
                    overflowing_key = key;
                    return;
                }
            }
            if (key >> day_bits != song) {
                song = key >> day_bits;
                song_totals[song_count] = 0;
                song_starts[song_count++] = static_cast<int64_t>(lines);
            }
            int64_t& song_total = song_totals[song_count - 1];
            if (__builtin_add_overflow(song_total, static_cast<int64_t>(total), &song_total))
                song_total = static_cast<int64_t>(kMaxInt64);
            line_offsets[lines++] = p - body;
            p = write_song(p, songs.songs[songs.by_rank[key >> day_bits]], strings.data);
            *p++ = ',';
            std::memcpy(p, &dates[(key & day_mask) * kDateLength], kDateLength);
            p += kDateLength;
            *p++ = ',';
            p = write_decimal(p, total);
            *p++ = '\n';
        }
        line_offsets[lines] = p - body;
        body_length = static_cast<size_t>(p - body);
    }
};

PyObject* sum_sort_render(PyObject*, PyObject* args) {
    PyObject* columns;
    if (!PyArg_ParseTuple(args, "O", &columns)) return nullptr;
    RowColumns rows;
    if (!rows.get(columns, "sum_sort_render")) return nullptr;
    const Strings& strings = rows.strings;
    BucketTotals totals{strings};
    Py_BEGIN_ALLOW_THREADS
    totals.sort(rows.days.as<int32_t>(), rows.plays.as<int64_t>());
    Py_END_ALLOW_THREADS
    // At most one line per row: quoting at most doubles a song and adds 2; room at the end
    // for render's fixed-size stores.
    const Py_ssize_t song_bytes = strings.count ? strings.offsets[strings.count] - strings.offsets[0] : 0;
    const auto line_rest = static_cast<Py_ssize_t>(2 + 1 + kDateLength + 1 + kMaxDecimalLength + 1);
    const auto song_count = static_cast<Py_ssize_t>(totals.songs.songs.size());
    OutBytes body, line_offsets, song_starts, song_totals;
    if (!body.allocate(2 * song_bytes + strings.count * line_rest + 32) || !line_offsets.allocate((strings.count + 1) * 8) ||
        !song_starts.allocate(song_count * 8) || !song_totals.allocate(song_count * 8))
        return nullptr;
    Py_BEGIN_ALLOW_THREADS
    totals.render(body.data<char>(), line_offsets.data<int64_t>(), song_starts.data<int64_t>(), song_totals.data<int64_t>());
    Py_END_ALLOW_THREADS
    if (totals.overflow) {
        size_t length;
        const uint8_t* song = totals.song_bytes(totals.overflowing_key, length);
        const OwnedRef song_and_day(
            Py_BuildValue("(y#i)", song, static_cast<Py_ssize_t>(length), totals.day(totals.overflowing_key)));
        if (song_and_day) PyErr_SetObject(PyExc_OverflowError, song_and_day.get());
        return nullptr;
    }
    if (!body.shrink(static_cast<Py_ssize_t>(totals.body_length)) ||
        !line_offsets.shrink(static_cast<Py_ssize_t>(totals.lines + 1) * 8))
        return nullptr;
    return Py_BuildValue("NNNN", body.release(), line_offsets.release(), song_starts.release(), song_totals.release());
}

// The rows of a block summed per (song, day), with each row's song hash; None when a total
// would not fit in 64 bits (the reduce then finds and reports it exactly).
PyObject* combine(PyObject*, PyObject* args) {
    PyObject* columns;
    if (!PyArg_ParseTuple(args, "O", &columns)) return nullptr;
    RowColumns rows;
    if (!rows.get(columns, "combine")) return nullptr;
    const Strings& strings = rows.strings;
    BucketTotals totals{strings};
    size_t groups = 0, song_bytes = 0;
    bool fits;
    Py_BEGIN_ALLOW_THREADS
    fits = totals.sum_groups(rows.days.as<int32_t>(), rows.plays.as<int64_t>());
    if (fits) groups = totals.entries.size(), song_bytes = totals.group_song_bytes();
    Py_END_ALLOW_THREADS
    if (!fits || song_bytes > INT32_MAX) Py_RETURN_NONE;
    const auto count = static_cast<Py_ssize_t>(groups);
    OutRows out;  // plays: each group's total
    OutBytes out_hashes;
    if (!out.allocate(count, static_cast<Py_ssize_t>(song_bytes)) || !out_hashes.allocate(count * 8)) return nullptr;
    Py_BEGIN_ALLOW_THREADS
    totals.emit_groups(out.offsets.data<int32_t>(), out.songs.data<uint8_t>(), out.days.data<int32_t>(),
                       out.plays.data<int64_t>(), out_hashes.data<uint64_t>());
    Py_END_ALLOW_THREADS
    return Py_BuildValue("nNNNNN", count, out.offsets.release(), out.songs.release(), out.days.release(),
                         out.plays.release(), out_hashes.release());
}

PyMethodDef methods[] = {
    {"parse_plain", parse_plain, METH_VARARGS,
     "parse_plain(data) -> (newlines, rows, offsets, songs, days, plays) or None when the block is not plain."},
    {"parse_rows", parse_rows, METH_VARARGS,
     "parse_rows(data, lines=False) -> (newlines, (rows, offsets, songs, days, plays), 0-based line of each row "
     "or None, None), or (newlines, None, None, (line, problem, column, value)) for the first invalid record."},
    {"first_record", first_record, METH_VARARGS,
     "first_record(data, complete) -> (start, end, [fields]) or (start, None, (0, problem, column, value)); "
     "None when the record may go on past the data."},
    {"hash_strings", hash_strings, METH_VARARGS, "hash_strings(offsets, data) -> uint64 hash of each string."},
    {"partition", partition, METH_VARARGS,
     "partition((offsets, data, days, plays), hashes, buckets) -> the columns grouped by bucket, and bucket row offsets."},
    {"combine", combine, METH_VARARGS,
     "combine((offsets, data, days, plays)) -> (rows, offsets, songs, days, totals, hashes) or None on a 64-bit overflow."},
    {"sum_sort_render", sum_sort_render, METH_VARARGS,
     "sum_sort_render((offsets, data, days, plays)) -> (csv body, line offsets, first line of each song, "
     "plays of each song)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "The engine's compiled inner loops.", -1, methods, nullptr, nullptr, nullptr, nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__kernels() { return PyModule_Create(&module); }
