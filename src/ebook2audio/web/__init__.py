"""The web app: ``ebook2audio serve`` (docs/web.md). A persistent queue (:mod:`.queue`), a runner of
conversions in child processes (:mod:`.runner`), the HTTP API and page (:mod:`.server`, the only
module that imports FastAPI) and the command (:mod:`.serve`)."""
