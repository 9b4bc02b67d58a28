"""Text that sounds like what people say to a recogniser: conversation, dictation, questions and
commands, numbers, years, dates, times, money, phone numbers, spelled letters and the spelling
alphabet, and many one-to-three-word utterances.

Each utterance is written twice: the form a synthesiser reads (`say`: capital letters for spelled
letters, "A.M.", commas for pauses; never digits, so espeak-ng's number reading never decides the
words) and the transcript by the scoring convention (common.normalize of `say`: lower case words,
letters as single letters). Asterisk prompt texts are removed as in text.py; texts picked by
common.heldout_text go to talk-heldout.txt (the natural-voice test draws from it) and never into
talk.txt (training audio and the LM).

Usage: talk.py [--seed 1] [--n 60000]   -> data/text/talk.txt, data/text/talk-heldout.txt ("say<TAB>transcript")
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, heldout_text, normalize, number_words, ordinal_words  # noqa: E402
from text import evaluation_filter  # noqa: E402

NAMES = ("john mary james linda robert sarah michael emma david olivia daniel sophie thomas grace peter anna "
         "paul lucy mark emily steven hannah andrew chloe kevin laura brian megan george rachel jack helen "
         "oliver rebecca harry amy charlie jessica william kate sam natalie ben claire tom alice joe ruth "
         "luke maria carlos priya ahmed yuki chen fatima ivan sean nora omar leah mum mom dad grandma").split()
SURNAMES = ("smith jones brown taylor wilson johnson davies miller evans thomas roberts walker wright "
            "robinson thompson white hughes edwards green hall wood harris clarke jackson turner hill moore "
            "martin cooper ward morris king baker lee patel khan garcia nguyen murphy kelly").split()
PLACES = ["london", "paris", "new york", "boston", "chicago", "seattle", "denver", "dallas", "houston", "atlanta",
          "miami", "toronto", "dublin", "edinburgh", "glasgow", "manchester", "leeds", "bristol", "oxford",
          "cambridge", "berlin", "madrid", "rome", "sydney", "melbourne", "tokyo", "delhi", "mumbai", "cairo",
          "lagos", "nairobi", "mexico city", "san francisco", "los angeles", "vancouver", "the airport",
          "the station", "the office", "home", "work", "school", "the hospital", "the city centre", "downtown"]
THINGS = ["milk", "bread", "eggs", "coffee", "tea", "butter", "cheese", "apples", "bananas", "rice", "pasta",
          "batteries", "light bulbs", "paper towels", "dog food", "toothpaste", "shampoo", "stamps", "flowers",
          "a birthday card", "the tickets", "the car keys", "my glasses", "the charger", "a new phone"]
ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "hallway", "office", "garage", "garden", "dining room",
         "basement", "upstairs", "downstairs"]
DEVICES = ["lights", "lamp", "heating", "air conditioning", "fan", "tv", "television", "radio", "speaker",
           "oven", "kettle", "coffee machine", "washing machine", "dishwasher", "alarm", "camera", "printer"]
GENRES = ["jazz", "rock", "classical music", "pop", "the news", "the radio", "some music", "something relaxing",
          "my playlist", "the next episode", "a podcast", "country music", "the blues", "hip hop", "the beatles"]
APPS = ["calendar", "email", "messages", "settings", "camera", "browser", "maps", "calculator", "notes",
        "contacts", "photos", "music player", "weather", "clock", "terminal", "file manager", "text editor"]
EDIT = ["undo", "redo", "undo that", "select all", "copy", "copy that", "paste", "cut", "delete that",
        "delete the last word", "scratch that", "new line", "new paragraph", "save", "save the file",
        "save and close", "close the window", "open a new tab", "close this tab", "scroll down", "scroll up",
        "page down", "page up", "go to the top", "go to the bottom", "zoom in", "zoom out", "full screen",
        "go back", "go forward", "refresh", "print this", "find and replace", "search for", "bold", "italic",
        "capitalise that", "all caps", "read that back", "send it", "start dictation", "stop dictation"]
SHORT = ["yes", "no", "yeah", "yep", "nope", "okay", "ok", "sure", "right", "alright", "fine", "great", "thanks",
         "thank you", "please", "sorry", "pardon", "what", "hello", "hi", "hey", "bye", "goodbye", "cheers",
         "stop", "go", "start", "wait", "pause", "play", "next", "back", "cancel", "help", "repeat", "again",
         "continue", "skip", "done", "finished", "louder", "quieter", "up", "down", "left", "right", "menu",
         "home", "exit", "quit", "enter", "send", "delete", "clear", "reset", "undo", "save", "open", "close",
         "maybe", "perhaps", "of course", "no way", "i see", "got it", "not sure", "i think so", "never mind",
         "hang on", "hold on", "one moment", "just a second", "good morning", "good afternoon",
         "good evening", "good night", "see you", "see you later", "talk soon", "excuse me", "me too",
         "you too", "not really", "absolutely", "definitely", "exactly", "correct", "that's right",
         "that's wrong", "try again", "go ahead", "sounds good", "no problem", "how much", "how many",
         "where", "when", "why", "who", "which one", "the first one", "the second one", "the last one",
         "this one", "that one", "all of them", "none", "both", "neither", "more", "less", "faster", "slower",
         "call home", "call mum", "call dad", "what time is it", "what's the time", "what day is it",
         "thank you so much", "well done", "oh dear", "oh no", "wow", "really", "hmm", "uh huh", "um"]
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
MONTHS = "january february march april may june july august september october november december".split()
UNITS = ["minutes", "hours", "seconds", "days", "weeks"]
ALPHABET = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa "
            "quebec romeo sierra tango uniform victor whiskey x-ray yankee zulu").split()
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
WEATHER = ["sunny", "cold", "warm", "raining", "windy", "cloudy", "snowing", "hot", "freezing", "nice out"]


class Gen:
    """Each method returns one `say` string (words and punctuation only, never digits)."""

    def __init__(self, rng):
        self.r = rng

    def c(self, seq):
        return self.r.choice(seq)

    # ---------------------------------------------------------- numbers
    def number(self):
        r = self.r.random()
        if r < 0.3:
            n = self.r.randrange(0, 20)
        elif r < 0.6:
            n = self.r.randrange(20, 100)
        elif r < 0.85:
            n = self.r.randrange(100, 10000)
        else:
            n = self.r.randrange(10000, 10**7)
        w = number_words(n)
        if n >= 100 and self.r.random() < 0.35:  # British "and": one hundred and five
            parts = w.split(" hundred ")
            if len(parts) == 2:
                w = parts[0] + " hundred and " + parts[1]
        if 100 <= n < 1000 and n % 100 and self.r.random() < 0.2:
            w = "a" + w[3:] if w.startswith("one hundred") else w
        return w

    def year(self):
        y = self.r.randrange(1900, 2040) if self.r.random() < 0.9 else self.r.randrange(1000, 1900)
        hi, lo = divmod(y, 100)
        if 2000 <= y < 2010 or (y >= 2010 and self.r.random() < 0.3):
            return number_words(y) if self.r.random() < 0.6 or y < 2010 else number_words(y).replace("thousand", "thousand and")
        if lo == 0:
            return number_words(hi) + " hundred"
        return number_words(hi) + " " + (("oh " + number_words(lo)) if lo < 10 else number_words(lo))

    def decimal(self):
        return f"{number_words(self.r.randrange(0, 100))} point " + " ".join(
            number_words(self.r.randrange(10)) for _ in range(self.r.choice([1, 1, 2, 3])))

    def fraction(self):
        return self.c(["a half", "a quarter", "three quarters", "a third", "two thirds", "one and a half",
                       f"{number_words(self.r.randrange(2, 10))} and a half", "half a dozen", "a dozen"])

    def quantity(self):
        return self.c([self.number, self.decimal, self.fraction, self.percent, self.temperature])()

    def percent(self):
        return f"{self.c([number_words(self.r.randrange(101)), self.decimal()])} percent"

    def temperature(self):
        return f"{self.c(['minus ', ''])}{number_words(self.r.randrange(41))} degrees" + self.c(["", "", " celsius", " fahrenheit"])

    def digits(self, k):
        zero = self.c(["zero", "oh"])
        out, i = [], 0
        ds = [self.r.randrange(10) for _ in range(k)]
        while i < len(ds):
            if i + 1 < len(ds) and ds[i] == ds[i + 1] and self.r.random() < 0.3:
                out.append("double " + (zero if ds[i] == 0 else number_words(ds[i])))
                i += 2
                continue
            out.append(zero if ds[i] == 0 else number_words(ds[i]))
            i += 1
        return " ".join(out)

    def phone(self):
        groups = self.c([[3, 3, 4], [5, 6], [4, 3, 4], [3, 4], [4, 4], [3, 3, 3]])
        sep = self.c([", ", " ", ", "])
        num = sep.join(self.digits(k) for k in groups)
        return self.c(["{}", "my number is {}", "call {}", "dial {}", "the number is {}", "it's {}",
                       "you can reach me on {}", "extension " + self.digits(self.r.choice([3, 4]))]).format(num)

    def money(self):
        big = self.r.random() < 0.3
        d = self.r.randrange(1, 10000 if big else 100)
        c = self.r.randrange(1, 100)
        cur = self.c([("dollar", "dollars", "cent", "cents"), ("pound", "pounds", "penny", "pence"),
                      ("euro", "euros", "cent", "cents")])
        unit = cur[0] if d == 1 else cur[1]
        sub = cur[2] if c == 1 else cur[3]
        return self.c([f"{number_words(d)} {unit}", f"{number_words(d)} {unit} and {number_words(c)} {sub}",
                       f"{number_words(d)} {unit} {number_words(c)}", f"{number_words(c)} {sub}",
                       f"{number_words(d)} {number_words(c)}" if c >= 10 else f"{number_words(d)} oh {number_words(c)}",
                       f"a hundred {cur[1]}", f"a thousand {cur[1]}", f"half a million {cur[1]}"])

    # ---------------------------------------------------------- dates and times
    def date(self):
        d, m = self.r.randrange(1, 32), self.c(MONTHS)
        return self.c([f"{m} {ordinal_words(d)}", f"the {ordinal_words(d)} of {m}", f"{m} {number_words(d)}",
                       f"{self.c(DAYS)} the {ordinal_words(d)}", f"{m} {ordinal_words(d)} {self.year()}",
                       f"the {ordinal_words(d)} of {m} {self.year()}", f"next {self.c(DAYS)}", f"last {self.c(DAYS)}",
                       f"this {self.c(DAYS)}", "tomorrow", "today", "yesterday", "the day after tomorrow",
                       f"in {number_words(self.r.randrange(2, 12))} {self.c(['days', 'weeks', 'months'])}",
                       f"{m} {self.year()}", f"in {m}", f"on the {ordinal_words(d)}", "next week", "next month",
                       "this weekend", "the end of the month", f"{self.c(DAYS)} morning", f"{self.c(DAYS)} night"])

    def time(self):
        h, m = self.r.randrange(1, 13), self.r.randrange(60)
        mm = "" if m == 0 else (" oh " + number_words(m) if m < 10 else " " + number_words(m))
        ampm = self.c(["", "", " A.M.", " P.M.", " AM", " PM", " in the morning", " in the afternoon", " in the evening",
                       " at night", " tonight"])
        return self.c([f"{number_words(h)}{mm}{ampm}", f"{number_words(h)} o'clock{self.c(['', ampm])}",
                       f"half past {number_words(h)}", f"quarter past {number_words(h)}",
                       f"quarter to {number_words(h)}", f"{number_words(m or 5)} past {number_words(h)}",
                       f"{number_words(m or 10)} to {number_words(h)}", "noon", "midnight", "midday",
                       f"{number_words(self.r.randrange(24)).replace('zero', 'oh')} hundred hours",
                       f"{number_words(h)} thirty", f"{number_words(h)} fifteen", f"{number_words(h)} forty five"])

    def when(self):
        return self.c([self.time, self.date, lambda: f"{self.date()} at {self.time()}"])()

    def duration(self):
        n = self.r.randrange(1, 61)
        u = self.c(UNITS)
        if n == 1:
            return f"one {u[:-1]}"
        return self.c([f"{number_words(n)} {u}", f"{number_words(n)} and a half {u}" if n < 10 else f"{number_words(n)} {u}",
                       "half an hour", "an hour", "a minute", "thirty seconds", "an hour and a half"])

    # ---------------------------------------------------------- letters
    def letters(self, k=None):
        k = k or self.c([1, 2, 3, 3, 4, 5, 6, 7])
        ls = [self.c(LETTERS) for _ in range(k)]
        return self.c([", ", ". "]).join(ls) + "."

    def spell(self):
        word = self.c(NAMES + SURNAMES + PLACES[:30])
        if " " in word:
            word = word.split()[0]
        spelt = self.c([", ", ". "]).join(ch.upper() for ch in word)
        return self.c(["{w}, {s}", "that's {s}", "it's spelled {s}", "{s}", "my name is {w}, {s}",
                       "the surname is {w}, that's {s}", "spell {w}", "how do you spell {w}"]).format(w=word, s=spelt)

    def alphabet(self):
        k = self.c([1, 1, 2, 3, 4, 5])
        if self.r.random() < 0.4:
            ls = [self.c(LETTERS) for _ in range(k)]
            return ", ".join(f"{x} as in {ALPHABET[ord(x) - 65]}" if self.r.random() < 0.7 else
                             f"{x} for {ALPHABET[ord(x) - 65]}" for x in ls)
        return " ".join(self.c(ALPHABET) for _ in range(k))

    def code(self, bare=False):
        parts = [self.letters(self.c([1, 2, 3])), self.digits(self.c([1, 2, 3, 4]))]
        self.r.shuffle(parts)
        if bare:
            return " ".join(parts)
        return self.c(["{}", "the code is {}", "reference {}", "booking reference {}", "flight {}",
                       "room {}", "seat {}", "postcode {}", "order number {}"]).format(" ".join(parts))

    def email(self):
        user = self.c([self.c(NAMES), f"{self.c(NAMES)} dot {self.c(SURNAMES)}", f"{self.c(NAMES)} {self.digits(2)}",
                       self.letters(1) + " " + self.c(SURNAMES)])
        dom = self.c(["example", "mail", "work", "company", self.c(SURNAMES)])
        return f"{user} at {dom} dot {self.c(['com', 'org', 'net', 'co dot uk', 'io'])}"

    # ---------------------------------------------------------- speech acts
    def command(self):
        room, dev = self.c(ROOMS), self.c(DEVICES)
        return self.c([
            f"turn {self.c(['on', 'off'])} the {dev}", f"turn the {room} {dev} {self.c(['on', 'off'])}",
            f"turn {self.c(['on', 'off'])} the {room} lights", f"switch {self.c(['on', 'off'])} the {dev}",
            f"dim the lights to {number_words(self.r.randrange(1, 10) * 10)} percent",
            f"set the temperature to {number_words(self.r.randrange(15, 28))} degrees",
            f"set a timer for {self.duration()}", f"set an alarm for {self.time()}",
            f"wake me up at {self.time()}", f"remind me to buy {self.c(THINGS)}",
            f"remind me to call {self.c(NAMES)} {self.when()}", f"remind me {self.when()} to {self.c(['pay the bills', 'water the plants', 'take my medicine', 'book the tickets', 'send the report'])}",
            f"play {self.c(GENRES)}", f"play {self.c(GENRES)} in the {room}", f"open {self.c(APPS)}",
            f"open the {self.c(APPS)}", f"close {self.c(APPS)}", f"call {self.c(NAMES)}",
            f"call {self.c(NAMES)} {self.c(SURNAMES)}", f"call {self.c(NAMES)} on {self.c(['mobile', 'speaker', 'video'])}",
            f"text {self.c(NAMES)}", f"send a message to {self.c(NAMES)}", f"add {self.c(THINGS)} to the shopping list",
            f"add {self.c(THINGS)} and {self.c(THINGS)} to my list", f"navigate to {self.c(PLACES)}",
            f"take me to {self.c(PLACES)}", f"book a table for {number_words(self.r.randrange(1, 9))} {self.when()}",
            f"schedule a meeting with {self.c(NAMES)} {self.when()}", f"cancel my {self.c(['meeting', 'appointment', 'alarm', 'timer', 'order'])}",
            f"volume {self.c(['up', 'down'])}", f"set the volume to {number_words(self.r.randrange(11))}",
            f"skip this {self.c(['song', 'track', 'ad', 'episode'])}", f"go to page {self.number()}",
            f"press {self.c(['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'zero', 'star', 'pound', 'hash'])}",
            f"lock the {self.c(['door', 'front door', 'back door', 'screen', 'car'])}", f"show me {self.c(['my calendar', 'the weather', 'my photos', 'the news', 'my messages', 'the map'])}",
            f"pay {self.c(NAMES)} {self.money()}", f"transfer {self.money()} to {self.c(['savings', 'my current account', self.c(NAMES)])}",
            f"convert {self.money()} to {self.c(['dollars', 'pounds', 'euros', 'yen'])}", self.c(EDIT),
            f"{self.c(EDIT)}", f"search for {self.c(THINGS)} near me", f"find {self.c(['a pharmacy', 'a petrol station', 'a gas station', 'a coffee shop', 'a restaurant', 'a cash machine'])} near {self.c(PLACES)}"])

    def question(self):
        return self.c([
            f"what's the weather like {self.c(['today', 'tomorrow', 'this weekend', 'in ' + self.c(PLACES)])}",
            f"is it going to rain {self.c(['today', 'tomorrow', 'tonight', 'this afternoon'])}",
            f"will it be {self.c(WEATHER)} {self.c(['tomorrow', 'on ' + self.c(DAYS)])}",
            f"how long does it take to get to {self.c(PLACES)}", f"how far is {self.c(PLACES)}",
            f"what time does the {self.c(['shop', 'store', 'bank', 'library', 'pharmacy', 'museum'])} {self.c(['open', 'close'])}",
            f"what's on my calendar {self.c(['today', 'tomorrow', 'next week', 'on ' + self.c(DAYS)])}",
            f"do i have any {self.c(['new messages', 'meetings today', 'missed calls', 'emails from ' + self.c(NAMES)])}",
            f"what's {self.number()} {self.c(['plus', 'minus', 'times', 'divided by'])} {self.number()}",
            f"what is {self.percent()} of {self.number()}", f"how much is {self.money()} in {self.c(['dollars', 'pounds', 'euros'])}",
            f"how many {self.c(['days', 'weeks', 'hours', 'minutes'])} until {self.c(['christmas', 'friday', 'the weekend', self.date()])}",
            f"what day is {self.date()}", f"when is {self.c(NAMES)}'s birthday", f"where is {self.c(['the nearest', 'my'])} {self.c(['car', 'phone', 'station', 'hospital', 'bus stop'])}",
            f"who is calling", f"can you {self.c(['help me', 'repeat that', 'say that again', 'speak slower', 'call ' + self.c(NAMES)])}",
            f"could you {self.c(['turn it down', 'play it again', 'read it back to me', 'send that', 'check the time'])}",
            f"what did {self.c(NAMES)} say", f"are we still meeting {self.when()}", f"is {self.c(NAMES)} coming {self.when()}",
            f"did you get my message", f"have you seen my {self.c(['keys', 'glasses', 'phone', 'wallet', 'bag'])}",
            f"what's the capital of {self.c(['france', 'spain', 'canada', 'australia', 'japan', 'kenya', 'peru'])}",
            f"how do you say {self.c(['hello', 'thank you', 'good morning'])} in {self.c(['french', 'spanish', 'german', 'italian'])}",
            f"how old is {self.c(NAMES)}", f"what's the score", f"who won the game", f"what's the news today",
            f"why is the {self.c(DEVICES)} not working", f"which {self.c(['platform', 'gate', 'room', 'floor'])} is it",
            f"how much does it cost", f"is there a {self.c(['train', 'bus', 'flight'])} to {self.c(PLACES)} {self.when()}"])

    def conversation(self):
        n = self.c(NAMES)
        return self.c([
            f"hi {n}", f"hello {n}, how are you", "how are you doing", "i'm fine thanks, and you", "not bad, thanks",
            f"this is {n} speaking", f"hi, it's {n}", f"can i speak to {n} please", f"{n} isn't here right now",
            f"i'll call you back {self.when()}", f"i'm running about {self.duration()} late", "i'm on my way",
            f"i'll be there in {self.duration()}", f"let's meet at {self.c(PLACES)} {self.when()}",
            f"see you {self.when()}", "sorry, i didn't catch that", "could you say that again please",
            "i don't think that's right", "that sounds like a good idea", "i'm not sure about that",
            "let me think about it", "i'll get back to you", f"thanks for your help, {n}", "have a nice day",
            "it was nice talking to you", "what do you mean", "i completely agree", "no, that's not what i said",
            f"tell {n} i said hello", f"i need to {self.c(['leave', 'go', 'finish this', 'make a call', 'check something'])} {self.c(['now', 'soon', 'first', 'in a minute'])}",
            f"my flight {self.c(['leaves', 'lands'])} at {self.time()}", f"the meeting is at {self.time()} {self.date()}",
            f"i was born on {self.date()}", f"i was born in {self.year()}", f"it costs {self.money()}",
            f"the total comes to {self.money()}", f"it's {self.temperature()} outside", f"it's about {self.quantity()}",
            f"we need {self.number()} more", f"i live at {self.number()} {self.c(SURNAMES)} {self.c(['street', 'road', 'avenue', 'lane', 'drive'])}",
            f"i'll have {self.c(['a coffee', 'a tea', 'the soup', 'the chicken', 'two of those', 'the same again'])} please",
            f"can i get {self.c(['a table for ' + number_words(self.r.randrange(1, 9)), 'the bill', 'a receipt', 'a refund'])} please",
            f"my account number is {self.digits(self.c([6, 8, 10]))}", f"my date of birth is {self.date()}",
            f"my postcode is {self.code(bare=True)}", f"my email address is {self.email()}", f"that's {self.email()}"])

    def dictation(self):
        n = self.c(NAMES)
        body = self.c([f"i'll be late {self.c(['tonight', 'today', 'for dinner', 'for the meeting'])}",
                       f"can you pick up {self.c(THINGS)} on the way home", f"the meeting has moved to {self.when()}",
                       "thanks for sending the report", "please call me when you get this",
                       f"i've left the keys with {self.c(NAMES)}", f"happy birthday {n}", "running late, sorry",
                       f"don't forget {self.c(THINGS)}", f"the train is delayed by {self.duration()}",
                       "see you soon", "let me know what you think", "i'm stuck in traffic",
                       f"dinner is at {self.time()}", f"we owe them {self.money()}"])
        return self.c([f"send a message to {n} saying {body}", f"text {n} {body}", f"reply {body}",
                       f"email {n}, {body}", f"new note, {body}", f"dear {n}, {body}", body,
                       f"{body}, full stop", f"{body}, period", f"{body}, question mark"])

    def short(self):
        return self.c([lambda: self.c(SHORT), lambda: self.c(SHORT), lambda: self.c(EDIT), lambda: self.c(NAMES),
                       lambda: self.c(PLACES), lambda: self.c(APPS), lambda: self.c(ALPHABET), lambda: self.c(LETTERS),
                       lambda: number_words(self.r.randrange(100)), lambda: ordinal_words(self.r.randrange(1, 32)),
                       lambda: self.c(DAYS), lambda: self.c(MONTHS), lambda: f"{self.c(SHORT)} {self.c(SHORT)}",
                       lambda: f"{self.c(['yes', 'no', 'okay'])} {self.c(['please', 'thanks', 'thank you'])}",
                       lambda: f"{self.c(['call', 'open', 'play', 'text', 'find'])} {self.c(NAMES + APPS)}",
                       self.time, self.year, lambda: self.digits(self.c([1, 2, 3, 4])), self.letters])()

    def utterance(self):
        gens = [(self.short, 30), (self.command, 14), (self.question, 12), (self.conversation, 12),
                (self.dictation, 6), (self.phone, 4), (self.money, 3), (self.when, 4), (self.quantity, 3),
                (self.year, 1), (self.spell, 3), (self.alphabet, 2), (self.letters, 2), (self.code, 2),
                (self.email, 1), (lambda: self.digits(self.c([3, 4, 5, 7, 10])), 1)]
        g = self.r.choices([f for f, _ in gens], weights=[w for _, w in gens])[0]
        return g()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=60000, help="distinct utterances to draw")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    g = Gen(rng)
    keep = evaluation_filter()
    seen, train, test = set(), [], []
    tries = 0
    while len(seen) < args.n and tries < args.n * 30:
        tries += 1
        say = " ".join(g.utterance().split())
        text = normalize(say)
        if not text or text in seen or not keep(text):
            continue
        seen.add(text)
        (test if heldout_text(text) else train).append((say, text))
    out = os.path.join(DATA, "text")
    os.makedirs(out, exist_ok=True)
    for name, rows in (("talk.txt", train), ("talk-heldout.txt", test)):
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.writelines(f"{s}\t{t}\n" for s, t in rows)
    short = sum(len(t.split()) <= 3 for _, t in train)
    print(f"talk.txt {len(train)} utterances ({short} of one to three words), talk-heldout.txt {len(test)}")


if __name__ == "__main__":
    main()
