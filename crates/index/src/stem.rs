//! English stemming with a memo of the words each thread has stemmed.
//!
//! tantivy's `Stemmer` runs the Snowball algorithm on every token. Text
//! repeats its words: a chunk's few hundred tokens are a few dozen words
//! over and over, and a site's vocabulary is tens of thousands. Snippets
//! stem every word of every hit again at each search (about an eighth of
//! `/embeddings`' CPU under load, docs/BENCHMARKS.md), and indexing stems
//! every word of every chunk. A lookup in a per-thread table costs less
//! than the algorithm; the stems are the same (`the_memo_stems_as_tantivy_does`).

use std::cell::RefCell;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words remembered by one thread before its memo starts again (about
/// 6 MB at most: a word and its stem, with the table's overhead).
const CAPACITY: usize = 65_536;

/// Words longer than this are stemmed each time (they are rare, and the
/// memo stays small).
const LONGEST: usize = 32;

thread_local! {
    static MEMO: RefCell<rustc_hash::FxHashMap<Box<str>, Box<str>>> = RefCell::default();
}

/// The English stemmer, as a token filter (tokens lowercased beforehand).
#[derive(Clone, Default)]
pub struct MemoStemmer;

impl TokenFilter for MemoStemmer {
    type Tokenizer<T: Tokenizer> = MemoStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MemoStemmerFilter<T> {
        MemoStemmerFilter { inner: tokenizer }
    }
}

#[derive(Clone)]
pub struct MemoStemmerFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for MemoStemmerFilter<T> {
    type TokenStream<'a> = MemoStemmerStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MemoStemmerStream {
            tail: self.inner.token_stream(text),
            stemmer: frostem::Stemmer::new(frostem::Algorithm::English),
        }
    }
}

pub struct MemoStemmerStream<T> {
    tail: T,
    stemmer: frostem::Stemmer,
}

impl<T: TokenStream> TokenStream for MemoStemmerStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        stem_in_place(&self.stemmer, &mut token.text);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Replaces `word` with its stem, from the memo when it has it.
fn stem_in_place(stemmer: &frostem::Stemmer, word: &mut String) {
    if word.len() > LONGEST {
        let stem = stemmer.stem(word).into_owned();
        *word = stem;
        return;
    }
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some(stem) = memo.get(word.as_str()) {
            word.clear();
            word.push_str(stem);
            return;
        }
        let stem: Box<str> = stemmer.stem(word).into();
        if memo.len() >= CAPACITY {
            memo.clear();
        }
        memo.insert(word.as_str().into(), stem.clone());
        word.clear();
        word.push_str(&stem);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

    fn tokens(mut analyzer: TextAnalyzer, text: &str) -> Vec<String> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    }

    #[test]
    fn the_memo_stems_as_tantivy_does() {
        let text = "Running runners ran; the generously generalised generalizations \
                    of happiness and happily running CONFIGURATIONS, configured twice: \
                    configured, configuring, y yes ys caresses ponies ties caress cats \
                    feed agreed disabled matting mating meeting milling messing meetings \
                    antidisestablishmentarianismantidisestablishmentarianism";
        // Twice: the second pass reads every stem from the memo.
        for _ in 0..2 {
            let theirs = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(Stemmer::default())
                .build();
            let ours = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(MemoStemmer)
                .build();
            let expected = tokens(theirs, text);
            assert_eq!(tokens(ours, text), expected);
            assert!(expected.contains(&"run".to_string()));
            assert!(expected.contains(&"configur".to_string()));
        }
    }

    #[test]
    fn a_full_memo_starts_again_and_still_stems() {
        let stemmer = frostem::Stemmer::new(frostem::Algorithm::English);
        for i in 0..CAPACITY + 10 {
            let mut word = format!("walking{i}");
            stem_in_place(&stemmer, &mut word);
            assert_eq!(word, stemmer.stem(&format!("walking{i}")));
        }
        assert!(MEMO.with(|m| m.borrow().len()) <= CAPACITY);
        let mut word = "walking".to_string();
        stem_in_place(&stemmer, &mut word);
        assert_eq!(word, "walk");
    }
}
