//! Common grams (as Lucene's CommonGramsFilter): next to every word, a
//! token joining it with its neighbour wherever either of the two is one
//! of the most common English words, at the first word's position.
//!
//! Phrase queries over common words ("how to", "of the") otherwise check
//! positions in nearly every chunk. With the grams, the same phrase also
//! requires the rare joined token at the same position, so the
//! intersection is driven by a short posting list; the words themselves
//! are still indexed, so single-word and unquoted queries are unchanged.
//! At query time (Lucene's CommonGramsQueryFilter) a word covered by a
//! gram is dropped for the gram: the phrase "of the" becomes the single
//! term `of_the`, which block-WAND can prune, and "reset the password"
//! becomes the phrase `reset_the the_password`, equivalent and cheaper.

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
    // Every common word is 1 to 5 bytes: most words are decided by their
    // length alone, before any comparison (this runs once per token).
    word.len() <= 5 && COMMON.binary_search(&word).is_ok()
}

/// For indexing: every word, and the grams.
#[derive(Clone, Copy, Default)]
pub struct CommonGrams;

/// For queries: the grams, and only the words no gram covers.
#[derive(Clone, Copy, Default)]
pub struct CommonGramsQuery;

impl TokenFilter for CommonGrams {
    type Tokenizer<T: Tokenizer> = CommonGramsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> CommonGramsFilter<T> {
        CommonGramsFilter {
            inner: tokenizer,
            query: false,
        }
    }
}

impl TokenFilter for CommonGramsQuery {
    type Tokenizer<T: Tokenizer> = CommonGramsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> CommonGramsFilter<T> {
        CommonGramsFilter {
            inner: tokenizer,
            query: true,
        }
    }
}

#[derive(Clone)]
pub struct CommonGramsFilter<T> {
    inner: T,
    query: bool,
}

impl<T: Tokenizer> Tokenizer for CommonGramsFilter<T> {
    type TokenStream<'a> = CommonGramsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CommonGramsStream {
            tail: self.inner.token_stream(text),
            previous: Token::default(),
            previous_common: false,
            has_previous: false,
            current: Token::default(),
            word: Token::default(),
            word_common: false,
            pending: false,
            query: self.query.then(Vec::new),
            read: false,
        }
    }
}

pub struct CommonGramsStream<S> {
    /// Query mode: the whole (short) query's output, reversed, once read.
    query: Option<Vec<Token>>,
    read: bool,
    tail: S,
    /// The last word read, to join with the next (when `has_previous`).
    previous: Token,
    previous_common: bool,
    has_previous: bool,
    current: Token,
    /// A word read while a gram was being emitted, given next (when
    /// `pending`).
    word: Token,
    word_common: bool,
    pending: bool,
}

impl<S: TokenStream> CommonGramsStream<S> {
    /// Everything the index side would emit, then without the words a
    /// gram covers.
    fn read_query(&mut self) -> Vec<Token> {
        let mut all = Vec::new();
        while self.advance_index() {
            all.push(self.current.clone());
        }
        let covered: std::collections::HashSet<usize> = all
            .iter()
            .filter(|t| t.position_length == 2)
            .flat_map(|t| [t.position, t.position + 1])
            .collect();
        let mut out: Vec<Token> = all
            .into_iter()
            .filter(|t| t.position_length == 2 || !covered.contains(&t.position))
            .collect();
        out.reverse();
        out
    }
}

impl<S: TokenStream> TokenStream for CommonGramsStream<S> {
    fn advance(&mut self) -> bool {
        if self.query.is_none() {
            return self.advance_index();
        }
        if !self.read {
            self.read = true;
            let tokens = self.read_query();
            self.query = Some(tokens);
        }
        match self.query.as_mut().and_then(Vec::pop) {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

/// Copies a token into another, reusing the text's buffer (this runs once
/// or twice per token indexed: a clone would allocate each time).
fn copy_token(to: &mut Token, from: &Token) {
    to.offset_from = from.offset_from;
    to.offset_to = from.offset_to;
    to.position = from.position;
    to.position_length = from.position_length;
    to.text.clear();
    to.text.push_str(&from.text);
}

impl<S: TokenStream> CommonGramsStream<S> {
    fn advance_index(&mut self) -> bool {
        // The second word of a gram just given: now the word itself.
        if self.pending {
            self.pending = false;
            copy_token(&mut self.current, &self.word);
            std::mem::swap(&mut self.previous, &mut self.word);
            self.previous_common = self.word_common;
            self.has_previous = true;
            return true;
        }
        if !self.tail.advance() {
            return false;
        }
        let word = self.tail.token();
        let common = is_common(&word.text);
        if std::mem::take(&mut self.has_previous) {
            let adjacent = word.position == self.previous.position + 1;
            if adjacent && (self.previous_common || common) {
                let gram = &mut self.current;
                gram.offset_from = self.previous.offset_from;
                gram.offset_to = word.offset_to;
                gram.position = self.previous.position;
                gram.position_length = 2;
                gram.text.clear();
                gram.text.push_str(&self.previous.text);
                gram.text.push('_');
                gram.text.push_str(&word.text);
                copy_token(&mut self.word, word);
                self.word_common = common;
                self.pending = true;
                return true;
            }
        }
        copy_token(&mut self.current, word);
        copy_token(&mut self.previous, word);
        self.previous_common = common;
        self.has_previous = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};

    fn analyzed<F: TokenFilter>(filter: F, text: &str) -> Vec<(String, usize)> {
        let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(filter)
            .build();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        stream.process(&mut |t| out.push((t.text.clone(), t.position)));
        out
    }

    fn query_tokens(text: &str) -> Vec<(String, usize)> {
        analyzed(CommonGramsQuery, text)
    }

    fn tokens(text: &str) -> Vec<(String, usize)> {
        analyzed(CommonGrams, text)
    }

    #[test]
    fn queries_keep_grams_and_the_words_no_gram_covers() {
        let t = |s: &str, p: usize| (s.to_string(), p);
        assert_eq!(query_tokens("of the"), vec![t("of_the", 0)]);
        assert_eq!(
            query_tokens("reset the password"),
            vec![t("reset_the", 0), t("the_password", 1)]
        );
        assert_eq!(
            query_tokens("release plan of record"),
            vec![t("release", 0), t("plan_of", 1), t("of_record", 2)]
        );
        assert_eq!(query_tokens("the"), vec![t("the", 0)]);
        assert_eq!(query_tokens(""), vec![]);
    }

    #[test]
    fn the_list_is_sorted_for_binary_search_and_short() {
        assert!(COMMON.windows(2).all(|w| w[0] < w[1]));
        // is_common decides longer words by their length alone.
        assert!(COMMON.iter().all(|w| (1..=5).contains(&w.len())));
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
