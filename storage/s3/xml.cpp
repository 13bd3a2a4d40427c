// S3 XML answers (storage/s3/xml.h).
#include "storage/s3/xml.h"

#include <expat.h>

#include <charconv>
#include <functional>

namespace mv::storage::s3 {
namespace {

// Text longer than this in one element is refused (a key is at most 1024 bytes, a token a few
// hundred): a hostile server cannot make the client hold a large string per element.
constexpr size_t kMaxText = 64 * 1024;

// Walks `xml` and calls `leaf(path, text)` for every element with its path of element names
// ("ListBucketResult/Contents/Key") and its text. `open(path)` is called when an element starts.
class Walker {
 public:
  using LeafFn = std::function<void(const std::string& path, const std::string& text)>;
  using OpenFn = std::function<void(const std::string& path)>;

  static Status Run(std::string_view xml, const OpenFn& open, const LeafFn& leaf) {
    Walker w(open, leaf);
    XML_Parser p = XML_ParserCreate("UTF-8");
    if (!p) return Status::IOError("cannot create an XML parser (out of memory)");
    XML_SetUserData(p, &w);
    XML_SetElementHandler(p, &Walker::Start, &Walker::End);
    XML_SetCharacterDataHandler(p, &Walker::Text);
    // Documents are parsed in pieces so that the length fits expat's int.
    Status st;
    size_t off = 0;
    do {
      size_t n = std::min<size_t>(xml.size() - off, 1 << 20);
      bool last = off + n == xml.size();
      if (XML_Parse(p, xml.data() + off, static_cast<int>(n), last) == XML_STATUS_ERROR) {
        st = Status::Corruption(std::string("the server's XML answer is malformed (") +
                                XML_ErrorString(XML_GetErrorCode(p)) + " at line " +
                                std::to_string(XML_GetCurrentLineNumber(p)) + ")");
        break;
      }
      off += n;
    } while (off < xml.size());
    if (st.ok() && !w.error_.empty()) st = Status::Corruption(w.error_);
    XML_ParserFree(p);
    return st;
  }

 private:
  Walker(const OpenFn& open, const LeafFn& leaf) : open_(open), leaf_(leaf) {}

  static void Start(void* self, const XML_Char* name, const XML_Char**) {
    auto* w = static_cast<Walker*>(self);
    w->lengths_.push_back(w->path_.size());
    if (!w->path_.empty()) w->path_ += '/';
    w->path_ += name;
    w->text_.clear();
    if (w->open_) w->open_(w->path_);
  }
  static void End(void* self, const XML_Char*) {
    auto* w = static_cast<Walker*>(self);
    if (w->leaf_) w->leaf_(w->path_, w->text_);
    w->text_.clear();
    w->path_.resize(w->lengths_.back());
    w->lengths_.pop_back();
  }
  static void Text(void* self, const XML_Char* s, int len) {
    auto* w = static_cast<Walker*>(self);
    if (w->text_.size() + static_cast<size_t>(len) > kMaxText) {
      if (w->error_.empty())
        w->error_ = "the server's XML answer has an element of more than 64 KiB of text (at " +
                    w->path_ + ")";
      return;
    }
    w->text_.append(s, static_cast<size_t>(len));
  }

  const OpenFn& open_;
  const LeafFn& leaf_;
  std::string path_, text_, error_;
  std::vector<size_t> lengths_;
};

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

Result<ListPage> ParseListObjectsV2(std::string_view xml) {
  ListPage page;
  bool root = false, bad_size = false;
  std::string bad_value;
  Status st = Walker::Run(
      xml,
      [&](const std::string& path) {
        if (path == "ListBucketResult") root = true;
        if (path == "ListBucketResult/Contents") page.objects.emplace_back();
      },
      [&](const std::string& path, const std::string& text) {
        if (path == "ListBucketResult/IsTruncated") page.truncated = text == "true";
        if (path == "ListBucketResult/NextContinuationToken") page.next_token = text;
        if (page.objects.empty()) return;
        ListedObject& o = page.objects.back();
        if (path == "ListBucketResult/Contents/Key") o.key = text;
        if (path == "ListBucketResult/Contents/ETag") o.etag = Unquote(text);
        if (path == "ListBucketResult/Contents/Size") {
          auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), o.size);
          if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
            bad_size = true;
            bad_value = text.substr(0, 40);
          }
        }
      });
  MV_RETURN_IF_ERROR(st);
  if (!root)
    return Status::Corruption("the server's answer to a listing is not a ListBucketResult");
  if (bad_size)
    return Status::Corruption("the server's listing gives an object size '" + bad_value +
                              "' that is not a number");
  for (const auto& o : page.objects)
    if (o.key.empty())
      return Status::Corruption("the server's listing has an object without a key");
  if (page.truncated && page.next_token.empty())
    return Status::Corruption(
        "the server's listing says it is truncated but gives no NextContinuationToken");
  return page;
}

ErrorBody ParseError(std::string_view xml) {
  ErrorBody e;
  Status st = Walker::Run(xml, nullptr, [&](const std::string& path, const std::string& text) {
    if (path == "Error/Code") e.code = text;
    if (path == "Error/Message") e.message = text;
    if (path == "Error/RequestId") e.request_id = text;
  });
  if (!st.ok()) return {};
  return e;
}

Result<std::string> ParseUploadId(std::string_view xml) {
  std::string id;
  MV_RETURN_IF_ERROR(
      Walker::Run(xml, nullptr, [&](const std::string& path, const std::string& text) {
        if (path == "InitiateMultipartUploadResult/UploadId") id = text;
      }));
  if (id.empty())
    return Status::Corruption("the server's answer to starting a multipart upload has no UploadId");
  return id;
}

}  // namespace mv::storage::s3
