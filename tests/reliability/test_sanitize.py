"""HTML messages keep their formatting and lose everything executable (sent through the official SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from azure.communication.chat import ChatMessageType, ChatThreadClient

from ..conftest import RunningServer
from ..support import User, new_user, official_chat

VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x ONERROR=\"alert(1)\">",
    "<img src=\"javascript:alert(1)\">",
    "<body onload=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<object data=\"javascript:alert(1)\"></object>",
    "<embed src=\"javascript:alert(1)\">",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">click</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">click</a>",
    "<a href=\"&#x6A;avascript:alert(1)\">click</a>",
    "<a href=\"java&#x09;script:alert(1)\">click</a>",
    "<a href=\" javascript:alert(1)\">click</a>",
    "<a href=\"vbscript:msgbox(1)\">click</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">click</a>",
    "<img src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
    "<div style=\"width: expression(alert(1))\">x</div>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<style>body{background:url(\"javascript:alert(1)\")}</style>",
    "<link rel=stylesheet href=\"https://evil.example/x.css\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"https://evil.example/\">",
    "<form action=\"https://evil.example\"><button formaction=\"javascript:alert(1)\">x</button></form>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<p onclick=alert(1) onmouseover='alert(2)'>hover</p>",
    "<a href=\"https://ok.example\" onclick=\"alert(1)\">ok</a>",
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<template><script>alert(1)</script></template>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<video><source onerror=\"alert(1)\"></video>",
    "<marquee onstart=alert(1)>x</marquee>",
    "%3Cscript%3Ealert(1)%3C/script%3E<b onmouseover=alert(1)>b</b>",
    "&lt;script&gt;alert(1)&lt;/script&gt;<i>fine</i>",
]

#: Tags that can never carry script or load active content.
SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "u", "ul", "details", "summary", "mark", "q", "cite", "dl", "dt", "dd", "figure",
    "figcaption", "caption", "col", "colgroup", "tfoot", "bdi", "bdo", "center", "data", "dfn", "font", "ins",
    "kbd", "map", "rp", "rt", "rtc", "ruby", "samp", "strike", "time", "tt", "var", "wbr", "article", "aside",
    "footer", "header", "hgroup", "nav", "section", "address", "acronym", "area", "big",
}
URL_ATTRIBUTES = {"href", "src", "cite", "action", "formaction", "data", "poster", "background", "srcset", "xlink:href"}


class Inspector(HTMLParser):
    """Collects every tag and attribute of a fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def executable_parts(html: str) -> list[str]:
    """Everything in ``html`` that a browser could run or that loads active content."""
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    found = []
    for tag, attrs in inspector.tags:
        if tag not in SAFE_TAGS:
            found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in ("style", "srcdoc", "formaction", "http-equiv"):
                found.append(f"{tag}[{name}]")
            if name in URL_ATTRIBUTES and value is not None:
                scheme = urlsplit(value.strip()).scheme.lower()
                if scheme not in ("", "http", "https", "mailto"):
                    found.append(f"{tag}[{name}={value}]")
    return found


def test_the_inspector_sees_the_vectors() -> None:
    """The check is not vacuous: every vector, unsanitised, is caught."""
    missed = [v for v in VECTORS if not executable_parts(v) and "&lt;" not in v and "<!--" not in v
              and "CDATA" not in v]
    assert missed == []


@pytest.fixture(scope="module")
def thread(open_server: RunningServer) -> Iterator[tuple[ChatThreadClient, User]]:
    user = new_user(open_server)
    chat = official_chat(open_server, user)
    created = chat.create_chat_thread("xss")  # type: ignore[misc]  # azure's decorator typing
    client = chat.get_chat_thread_client(  # type: ignore[misc]
        created.chat_thread.id, connection_verify=open_server.cert_path
    )
    yield client, user
    client.close()
    chat.close()


@pytest.mark.parametrize("vector", VECTORS)
def test_nothing_executable_survives_send_get_and_list(
    thread: tuple[ChatThreadClient, User], vector: str
) -> None:
    client, _ = thread
    sent = client.send_message(vector, chat_message_type=ChatMessageType.HTML)
    got = client.get_message(sent.id)
    assert got.type == ChatMessageType.HTML
    assert got.content.message is not None
    assert executable_parts(got.content.message) == []
    listed = next(m for m in client.list_messages(results_per_page=5) if m.id == sent.id)
    assert listed.content.message == got.content.message


@pytest.mark.parametrize("vector", VECTORS[::3])
def test_nothing_executable_survives_an_edit(thread: tuple[ChatThreadClient, User], vector: str) -> None:
    client, _ = thread
    sent = client.send_message("<p>harmless</p>", chat_message_type=ChatMessageType.HTML)
    client.update_message(sent.id, content=vector)
    got = client.get_message(sent.id)
    assert got.edited_on is not None
    assert got.content.message is not None
    assert executable_parts(got.content.message) == []


FORMATTED = (
    '<p><b>bold</b> <i>italic</i> <strong>strong</strong> <em>em</em> '
    '<a href="https://example.com/x?a=1&amp;b=2">link</a> <a href="mailto:a@example.com">mail</a></p>'
    "<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol><br><code>x &lt; y</code>"
)
KEPT = (
    '<p><b>bold</b> <i>italic</i> <strong>strong</strong> <em>em</em> '
    '<a href="https://example.com/x?a=1&amp;b=2" rel="noopener noreferrer">link</a> '
    '<a href="mailto:a@example.com" rel="noopener noreferrer">mail</a></p>'
    "<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol><br><code>x &lt; y</code>"
)


def test_ordinary_formatting_is_kept(thread: tuple[ChatThreadClient, User]) -> None:
    client, _ = thread
    sent = client.send_message(FORMATTED, chat_message_type=ChatMessageType.HTML)
    assert client.get_message(sent.id).content.message == KEPT
    client.update_message(sent.id, content=FORMATTED.replace("bold", "bolder"))
    assert client.get_message(sent.id).content.message == KEPT.replace("bold", "bolder")


def test_mixed_content_keeps_the_text_and_drops_the_script(thread: tuple[ChatThreadClient, User]) -> None:
    client, _ = thread
    sent = client.send_message('<p onclick="steal()">Hello <b>there</b><script>steal()</script></p>',
                               chat_message_type=ChatMessageType.HTML)
    assert client.get_message(sent.id).content.message == "<p>Hello <b>there</b></p>"


def test_text_messages_are_stored_verbatim(thread: tuple[ChatThreadClient, User]) -> None:
    """Only html is sanitised; a text message is shown as text by clients, so it is kept as sent."""
    client, _ = thread
    sent = client.send_message("<script>alert(1)</script>", chat_message_type=ChatMessageType.TEXT)
    assert client.get_message(sent.id).content.message == "<script>alert(1)</script>"
