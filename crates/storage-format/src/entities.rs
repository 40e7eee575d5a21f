//! Character references: numeric ones and the HTML named entities that
//! Confluence pages carry but XML does not define.

/// The character a named entity stands for (without `&` and `;`).
pub fn named(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" => "\u{a0}",
        "ensp" => "\u{2002}",
        "emsp" => "\u{2003}",
        "thinsp" => "\u{2009}",
        "zwnj" => "\u{200c}",
        "zwj" => "\u{200d}",
        "shy" => "\u{ad}",
        "mdash" => "\u{2014}",
        "ndash" => "\u{2013}",
        "hellip" => "\u{2026}",
        "lsquo" => "\u{2018}",
        "rsquo" => "\u{2019}",
        "sbquo" => "\u{201a}",
        "ldquo" => "\u{201c}",
        "rdquo" => "\u{201d}",
        "bdquo" => "\u{201e}",
        "laquo" => "\u{ab}",
        "raquo" => "\u{bb}",
        "lsaquo" => "\u{2039}",
        "rsaquo" => "\u{203a}",
        "bull" => "\u{2022}",
        "middot" => "\u{b7}",
        "prime" => "\u{2032}",
        "Prime" => "\u{2033}",
        "copy" => "\u{a9}",
        "reg" => "\u{ae}",
        "trade" => "\u{2122}",
        "deg" => "\u{b0}",
        "plusmn" => "\u{b1}",
        "times" => "\u{d7}",
        "divide" => "\u{f7}",
        "minus" => "\u{2212}",
        "le" => "\u{2264}",
        "ge" => "\u{2265}",
        "ne" => "\u{2260}",
        "asymp" => "\u{2248}",
        "infin" => "\u{221e}",
        "frac12" => "\u{bd}",
        "frac14" => "\u{bc}",
        "frac34" => "\u{be}",
        "sup1" => "\u{b9}",
        "sup2" => "\u{b2}",
        "sup3" => "\u{b3}",
        "micro" => "\u{b5}",
        "para" => "\u{b6}",
        "sect" => "\u{a7}",
        "cent" => "\u{a2}",
        "pound" => "\u{a3}",
        "yen" => "\u{a5}",
        "euro" => "\u{20ac}",
        "curren" => "\u{a4}",
        "iexcl" => "\u{a1}",
        "iquest" => "\u{bf}",
        "larr" => "\u{2190}",
        "uarr" => "\u{2191}",
        "rarr" => "\u{2192}",
        "darr" => "\u{2193}",
        "harr" => "\u{2194}",
        "lArr" => "\u{21d0}",
        "rArr" => "\u{21d2}",
        "hArr" => "\u{21d4}",
        "hearts" => "\u{2665}",
        "spades" => "\u{2660}",
        "clubs" => "\u{2663}",
        "diams" => "\u{2666}",
        "check" => "\u{2713}",
        "auml" => "\u{e4}",
        "ouml" => "\u{f6}",
        "uuml" => "\u{fc}",
        "Auml" => "\u{c4}",
        "Ouml" => "\u{d6}",
        "Uuml" => "\u{dc}",
        "szlig" => "\u{df}",
        "eacute" => "\u{e9}",
        "egrave" => "\u{e8}",
        "ecirc" => "\u{ea}",
        "aacute" => "\u{e1}",
        "agrave" => "\u{e0}",
        "acirc" => "\u{e2}",
        "iacute" => "\u{ed}",
        "oacute" => "\u{f3}",
        "uacute" => "\u{fa}",
        "ntilde" => "\u{f1}",
        "ccedil" => "\u{e7}",
        "Eacute" => "\u{c9}",
        "oslash" => "\u{f8}",
        "aring" => "\u{e5}",
        "aelig" => "\u{e6}",
        "alpha" => "\u{3b1}",
        "beta" => "\u{3b2}",
        "gamma" => "\u{3b3}",
        "delta" => "\u{3b4}",
        "lambda" => "\u{3bb}",
        "mu" => "\u{3bc}",
        "pi" => "\u{3c0}",
        "sigma" => "\u{3c3}",
        "omega" => "\u{3c9}",
        _ => return None,
    })
}

/// Decodes `&...;` references in `text` into `out`. A reference that is
/// not one (a stray `&`, an unknown name, an invalid number) stays as text;
/// returns how many of those there were.
pub fn decode_into(text: &str, out: &mut String) -> usize {
    let mut stray = 0;
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..]
            .char_indices()
            .take(32)
            .find(|(_, c)| *c == ';' || *c == '&' || *c == '<' || c.is_whitespace())
            .map(|(i, c)| (i + 1, c));
        match end {
            Some((semi, ';')) => {
                let name = &rest[1..semi];
                if let Some(decoded) = decode_reference(name) {
                    out.push_str(&decoded);
                    rest = &rest[semi + 1..];
                    continue;
                }
                stray += 1;
                out.push('&');
                rest = &rest[1..];
            }
            _ => {
                stray += 1;
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    stray
}

fn decode_reference(name: &str) -> Option<String> {
    if let Some(number) = name.strip_prefix('#') {
        let code = if let Some(hex) = number
            .strip_prefix('x')
            .or_else(|| number.strip_prefix('X'))
        {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            number.parse::<u32>().ok()?
        };
        let ch = char::from_u32(code).filter(|c| *c != '\0')?;
        return Some(ch.to_string());
    }
    named(name).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> String {
        let mut out = String::new();
        decode_into(text, &mut out);
        out
    }

    #[test]
    fn references() {
        assert_eq!(decode("a&nbsp;b &amp; c&#65;&#x42;"), "a\u{a0}b & cAB");
        assert_eq!(decode("R&D & co"), "R&D & co");
        assert_eq!(decode("&unknown; &#xZZ; &#0; &"), "&unknown; &#xZZ; &#0; &");
        assert_eq!(decode("&mdash;&hellip;"), "\u{2014}\u{2026}");
    }
}
