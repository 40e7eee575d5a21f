//! Common grams (as Lucene's CommonGramsFilter): next to every word, a
//! token joining it with its neighbour wherever either of the two is one
//! of the most common English words, at the first word's position.
//!
//! Phrase queries over common words ("how to", "of the") otherwise check
//! positions in nearly every chunk. With the grams, the same phrase also
//! requires the rare joined token at the same position, so the
//! intersection is driven by a short posting list; the words themselves
//! are still indexed, so single-word and unquoted queries are unchanged.
//! Indexing and querying share the analyzer, so both sides agree.

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// The most frequent English words (function words), lowercased.
const COMMON: &[&str] = &[
    "a", "about", "all", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "do",
    "for", "from", "had", "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "more", "no", "not", "of", "on", "one", "or", "our", "out", "she", "so", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "to", "up", "was", "we",
    "were", "what", "when", "which", "who", "will", "with", "would", "you", "your",
];

pub fn is_common(word: &str) -> bool {
    COMMON.binary_search(&word).is_ok()
}

#[derive(Clone, Copy, Default)]
pub struct CommonGrams;

impl TokenFilter for CommonGrams {
    type Tokenizer<T: Tokenizer> = CommonGramsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> CommonGramsFilter<T> {
        CommonGramsFilter { inner: tokenizer }
    }
}

#[derive(Clone)]
pub struct CommonGramsFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for CommonGramsFilter<T> {
    type TokenStream<'a> = CommonGramsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CommonGramsStream {
            tail: self.inner.token_stream(text),
            previous: None,
            current: Token::default(),
            pending: None,
        }
    }
}

pub struct CommonGramsStream<S> {
    tail: S,
    /// The last word read, to join with the next.
    previous: Option<Token>,
    current: Token,
    /// A word read while a gram was being emitted.
    pending: Option<Token>,
}

impl<S: TokenStream> TokenStream for CommonGramsStream<S> {
    fn advance(&mut self) -> bool {
        if let Some(word) = self.pending.take() {
            self.current = word.clone();
            self.previous = Some(word);
            return true;
        }
        if !self.tail.advance() {
            return false;
        }
        let word = self.tail.token().clone();
        if let Some(previous) = self.previous.take() {
            let adjacent = word.position == previous.position + 1;
            if adjacent && (is_common(&previous.text) || is_common(&word.text)) {
                self.current = Token {
                    offset_from: previous.offset_from,
                    offset_to: word.offset_to,
                    position: previous.position,
                    text: format!("{}_{}", previous.text, word.text),
                    position_length: 2,
                };
                self.pending = Some(word);
                return true;
            }
        }
        self.current = word.clone();
        self.previous = Some(word);
        true
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};

    fn tokens(text: &str) -> Vec<(String, usize)> {
        let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(CommonGrams)
            .build();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        stream.process(&mut |t| out.push((t.text.clone(), t.position)));
        out
    }

    #[test]
    fn the_list_is_sorted_for_binary_search() {
        assert!(COMMON.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn common_words_are_joined_with_their_neighbours() {
        let t = |s: &str, p: usize| (s.to_string(), p);
        assert_eq!(
            tokens("Reset the Password of it"),
            vec![
                t("reset", 0),
                t("reset_the", 0),
                t("the", 1),
                t("the_password", 1),
                t("password", 2),
                t("password_of", 2),
                t("of", 3),
                t("of_it", 3),
                t("it", 4),
            ]
        );
        assert_eq!(
            tokens("rare words only"),
            vec![t("rare", 0), t("words", 1), t("only", 2)]
        );
    }
}
