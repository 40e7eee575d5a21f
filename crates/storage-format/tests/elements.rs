//! One check per element kind: storage format in, Markdown out, exactly.

use storage_format::{to_markdown, to_text, NoResolver, Resolver};

#[track_caller]
fn check(storage: &str, expected: &str) {
    let converted = to_markdown(storage, &NoResolver);
    assert_eq!(converted.output.trim_end(), expected, "\ninput: {storage}");
}

struct Site;

impl Resolver for Site {
    fn page_url(&self, space: Option<&str>, title: &str) -> Option<String> {
        Some(format!(
            "https://wiki/{}/{}",
            space.unwrap_or("HERE"),
            title.replace(' ', "+")
        ))
    }
    fn attachment_url(&self, _page: Option<&str>, file: &str) -> Option<String> {
        Some(format!("https://wiki/files/{file}"))
    }
    fn user_name(&self, account: &str) -> Option<String> {
        (account == "557058:1").then(|| "Ada Lovelace".to_string())
    }
    fn space_url(&self, key: &str) -> Option<String> {
        Some(format!("https://wiki/spaces/{key}"))
    }
}

#[track_caller]
fn check_resolved(storage: &str, expected: &str) {
    let converted = to_markdown(storage, &Site);
    assert_eq!(converted.output.trim_end(), expected, "\ninput: {storage}");
}

#[test]
fn headings_and_text_effects() {
    check("<h1>Title</h1><h3>Sub</h3>", "# Title\n\n### Sub");
    check(
        "<p><strong>bold</strong> <em>it</em> <u>under</u> <s>gone</s> <code>x_y</code> a<sub>2</sub></p>",
        "**bold** *it* under ~~gone~~ `x_y` a2",
    );
    check("<p>line<br/>next</p>", "line\\\nnext");
    check(
        "<p>5 * 3 [x] snake_case _lead</p>",
        "5 \\* 3 \\[x\\] snake_case \\_lead",
    );
}

#[test]
fn lists_nested() {
    check(
        "<ul><li>one<ul><li>inner</li></ul></li><li>two</li></ul><ol><li>a</li><li>b</li></ol>",
        "- one\n  - inner\n- two\n\n1. a\n2. b",
    );
}

#[test]
fn tables_with_headers_merged_cells_and_nested_content() {
    check(
        "<table><tbody><tr><th>A</th><th>B</th><th>C</th></tr><tr><td colspan=\"2\"><p>wide</p></td><td><ul><li>x</li><li>y</li></ul></td></tr></tbody></table>",
        "| A | B | C |\n| --- | --- | --- |\n| wide |  | - x<br>- y |",
    );
    check("<table><tr><td>a|b</td></tr></table>", "| a\\|b |\n| --- |");
}

#[test]
fn code_and_noformat() {
    check(
        "<ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">python</ac:parameter><ac:plain-text-body><![CDATA[if a < b:\n    print(\"```\")]]></ac:plain-text-body></ac:structured-macro>",
        "````python\nif a < b:\n    print(\"```\")\n````",
    );
    check(
        "<ac:structured-macro ac:name=\"noformat\"><ac:plain-text-body><![CDATA[raw <text>]]></ac:plain-text-body></ac:structured-macro>",
        "```\nraw <text>\n```",
    );
    check("<pre>pre &amp; text</pre>", "```\npre & text\n```");
}

#[test]
fn panels_and_expand() {
    check(
        "<ac:structured-macro ac:name=\"warning\"><ac:parameter ac:name=\"title\">Careful</ac:parameter><ac:rich-text-body><p>Hot.</p></ac:rich-text-body></ac:structured-macro>",
        "> [!CAUTION]\n> **Careful**\n>\n> Hot.",
    );
    check(
        "<ac:structured-macro ac:name=\"info\"><ac:rich-text-body><p>FYI</p></ac:rich-text-body></ac:structured-macro>",
        "> [!NOTE]\n> FYI",
    );
    check(
        "<ac:structured-macro ac:name=\"panel\"><ac:parameter ac:name=\"bgColor\">#fff0b3</ac:parameter><ac:rich-text-body><p>Plain</p></ac:rich-text-body></ac:structured-macro>",
        "> Plain",
    );
    check(
        "<ac:structured-macro ac:name=\"expand\"><ac:parameter ac:name=\"title\">More</ac:parameter><ac:rich-text-body><p>Hidden</p></ac:rich-text-body></ac:structured-macro>",
        "**More**\n\nHidden",
    );
}

#[test]
fn status_jira_toc_children_excerpt_include() {
    check(
        "<p>State: <ac:structured-macro ac:name=\"status\"><ac:parameter ac:name=\"colour\">Green</ac:parameter><ac:parameter ac:name=\"title\">DONE</ac:parameter></ac:structured-macro> see <ac:structured-macro ac:name=\"jira\"><ac:parameter ac:name=\"key\">OPS-12</ac:parameter></ac:structured-macro></p>",
        "State: [DONE] see OPS-12",
    );
    check("<ac:structured-macro ac:name=\"toc\"><ac:parameter ac:name=\"maxLevel\">3</ac:parameter></ac:structured-macro>", "*[Table of contents]*");
    check(
        "<ac:structured-macro ac:name=\"children\"/>",
        "*[Child pages]*",
    );
    check(
        "<ac:structured-macro ac:name=\"excerpt-include\"><ac:parameter ac:name=\"\"><ac:link><ri:page ri:content-title=\"Release plan\"/></ac:link></ac:parameter></ac:structured-macro>",
        "*[Excerpt from: Release plan]*",
    );
}

#[test]
fn layouts_and_tasks() {
    check(
        "<ac:layout><ac:layout-section ac:type=\"two_equal\"><ac:layout-cell><p>left</p></ac:layout-cell><ac:layout-cell><p>right</p></ac:layout-cell></ac:layout-section></ac:layout>",
        "left\n\nright",
    );
    check(
        "<ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status><ac:task-body>Ship it</ac:task-body></ac:task><ac:task><ac:task-id>2</ac:task-id><ac:task-status>incomplete</ac:task-status><ac:task-body>Tell <strong>all</strong></ac:task-body></ac:task></ac:task-list>",
        "- [x] Ship it\n- [ ] Tell **all**",
    );
}

#[test]
fn emoticons() {
    check("<p>ok <ac:emoticon ac:name=\"tick\"/> <ac:emoticon ac:name=\"blue-star\" ac:emoji-fallback=\"🚀\"/></p>", "ok ✅ 🚀");
}

#[test]
fn links_of_every_kind_resolved_and_not() {
    let cases = [
        ("<ac:link><ri:page ri:content-title=\"Home Page\" ri:space-key=\"ENG\"/></ac:link>", "[Home Page](https://wiki/ENG/Home+Page)", "Home Page"),
        ("<ac:link><ri:page ri:content-title=\"Plan\"/><ac:plain-text-link-body><![CDATA[the plan]]></ac:plain-text-link-body></ac:link>", "[the plan](https://wiki/HERE/Plan)", "the plan"),
        ("<ac:link><ri:blog-post ri:content-title=\"News\" ri:posting-day=\"2024/01/02\"/></ac:link>", "[News](https://wiki/HERE/News)", "News"),
        ("<ac:link><ri:attachment ri:filename=\"spec.pdf\"/></ac:link>", "[spec.pdf](https://wiki/files/spec.pdf)", "spec.pdf"),
        ("<ac:link><ri:user ri:account-id=\"557058:1\"/></ac:link>", "@Ada Lovelace", "@user"),
        ("<ac:link><ri:space ri:space-key=\"OPS\"/></ac:link>", "[OPS](https://wiki/spaces/OPS)", "OPS"),
        ("<ac:link ac:anchor=\"intro\"><ac:link-body>Intro <em>here</em></ac:link-body></ac:link>", "[Intro *here*](#intro)", "[Intro *here*](#intro)"),
        ("<a href=\"https://example.com/a?b=1&amp;c=2\">site</a>", "[site](https://example.com/a?b=1&c=2)", "[site](https://example.com/a?b=1&c=2)"),
        ("<a href=\"javascript:alert(1)\">bad</a>", "bad", "bad"),
    ];
    for (storage, resolved, unresolved) in cases {
        check_resolved(&format!("<p>{storage}</p>"), resolved);
        check(&format!("<p>{storage}</p>"), unresolved);
    }
}

#[test]
fn images_with_alt_caption_and_attachment() {
    check_resolved(
        "<ac:image ac:alt=\"Diagram\"><ri:attachment ri:filename=\"arch.png\"/><ac:caption><p>The architecture</p></ac:caption></ac:image>",
        "![Diagram](https://wiki/files/arch.png) *The architecture*",
    );
    check(
        "<ac:image><ri:attachment ri:filename=\"my pic.png\"/></ac:image>",
        "![my pic.png](my%20pic.png)",
    );
    check(
        "<ac:image><ri:url ri:value=\"https://x/y.png\"/></ac:image>",
        "![https://x/y.png](https://x/y.png)",
    );
}

#[test]
fn unknown_macros_keep_their_text_not_their_parameters() {
    check(
        "<ac:structured-macro ac:name=\"roadmap\" ac:macro-id=\"abc-123\"><ac:parameter ac:name=\"colour\">#ff0000</ac:parameter><ac:rich-text-body><p>Keep me</p></ac:rich-text-body></ac:structured-macro>",
        "Keep me",
    );
    check(
        "<ac:structured-macro ac:name=\"mermaid\"><ac:plain-text-body><![CDATA[graph TD; A-->B]]></ac:plain-text-body></ac:structured-macro>",
        "```\ngraph TD; A-->B\n```",
    );
}

#[test]
fn entities_xml_does_not_define() {
    check(
        "<p>a&nbsp;b &mdash; c &hellip; &copy; &#8364; &euro;</p>",
        "a b — c … © € €",
    );
}

#[test]
fn broken_markup_is_repaired_and_reported() {
    let cases = [
        ("<p>unclosed <strong>bold", "unclosed **bold**"),
        ("<p>R&D & co</p>", "R&D & co"),
        ("<p>a < b and c > d</p>", "a \\< b and c > d"),
        (
            "<table border=1><tr><td>unquoted</td></tr></table>",
            "| unquoted |\n| --- |",
        ),
        ("<p>one</div>two</p>", "onetwo"),
        ("<p><![CDATA[never ends", "never ends"),
        (
            "<p>text <b>bold <i>both</b> after</i></p>",
            "text **bold *both*** after",
        ),
    ];
    for (storage, expected) in cases {
        let converted = to_markdown(storage, &NoResolver);
        assert_eq!(converted.output.trim_end(), expected, "input: {storage}");
        assert!(
            !converted.warnings.is_empty(),
            "a repair is reported: {storage}"
        );
    }
}

#[test]
fn plain_text_has_no_markup() {
    let storage = "<h1>Title</h1><p><strong>bold</strong> <a href=\"https://x\">link</a></p><ul><li>item</li></ul><table><tr><th>k</th><th>v</th></tr></table>";
    let text = to_text(storage, &NoResolver).output;
    assert_eq!(text.trim_end(), "Title\n\nbold link\n\n- item\n\nk | v");
}
