package web

// verdana11 is the advance width, in hundredths of a pixel, of each printable ASCII character
// (32 ' ' to 126 '~') in 11 px Verdana, the font badges are drawn in: the font's advance width in
// units of 1/2048 em times 11 px, as shields.io measures its badges. verdana11[r-' '] is r's.
var verdana11 = [95]int{
	387,  // ' '
	433,  // '!'
	505,  // '"'
	900,  // '#'
	699,  // '$'
	1184, // '%'
	799,  // '&'
	295,  // '\''
	500,  // '('
	500,  // ')'
	699,  // '*'
	900,  // '+'
	400,  // ','
	500,  // '-'
	400,  // '.'
	500,  // '/'
	699,  // '0'
	699,  // '1'
	699,  // '2'
	699,  // '3'
	699,  // '4'
	699,  // '5'
	699,  // '6'
	699,  // '7'
	699,  // '8'
	699,  // '9'
	500,  // ':'
	500,  // ';'
	900,  // '<'
	900,  // '='
	900,  // '>'
	600,  // '?'
	1100, // '@'
	752,  // 'A'
	754,  // 'B'
	768,  // 'C'
	848,  // 'D'
	696,  // 'E'
	632,  // 'F'
	853,  // 'G'
	827,  // 'H'
	463,  // 'I'
	500,  // 'J'
	762,  // 'K'
	612,  // 'L'
	927,  // 'M'
	823,  // 'N'
	866,  // 'O'
	663,  // 'P'
	866,  // 'Q'
	765,  // 'R'
	752,  // 'S'
	678,  // 'T'
	805,  // 'U'
	752,  // 'V'
	1088, // 'W'
	754,  // 'X'
	677,  // 'Y'
	754,  // 'Z'
	500,  // '['
	500,  // '\\'
	500,  // ']'
	900,  // '^'
	699,  // '_'
	699,  // '`'
	661,  // 'a'
	685,  // 'b'
	573,  // 'c'
	685,  // 'd'
	655,  // 'e'
	387,  // 'f'
	685,  // 'g'
	696,  // 'h'
	302,  // 'i'
	379,  // 'j'
	651,  // 'k'
	302,  // 'l'
	1070, // 'm'
	696,  // 'n'
	668,  // 'o'
	685,  // 'p'
	685,  // 'q'
	469,  // 'r'
	573,  // 's'
	433,  // 't'
	696,  // 'u'
	651,  // 'v'
	900,  // 'w'
	651,  // 'x'
	651,  // 'y'
	578,  // 'z'
	698,  // '{'
	500,  // '|'
	698,  // '}'
	900,  // '~'
}

// wideRune is the width of a rune outside the table (letters of other scripts, symbols, emoji):
// that of "m", the widest lower-case letter, so a badge is rather too wide than cut off.
const wideRune = 1070

// runeWidth is r's advance width in hundredths of a pixel.
func runeWidth(r rune) int {
	if r >= ' ' && r <= '~' {
		return verdana11[r-' ']
	}
	return wideRune
}

// textWidth is the width in pixels that a badge gives s in 11 px Verdana: the sum of the advance
// widths, whole pixels, rounded up to an odd number (as shields.io does, so the text's centre
// falls on the pixel grid).
func textWidth(s string) int {
	w := 0
	for _, r := range s {
		w += runeWidth(r)
	}
	px := w / 100
	if px%2 == 0 {
		px++
	}
	return px
}
