"""The texts of the answer page (``/termin/<token>``), in the seven languages of the reminders.

The page is for the participant, not for staff: it speaks the language the reminder was
written in (the link carries its code), not the German or English of the staff's pages, so its
texts live here beside each other rather than in the staff pages' gettext catalogue. Arabic and
Farsi are written right to left.
"""
from __future__ import annotations

DEFAULT = "de"
RTL = frozenset({"ar", "fa"})

TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "title": "Ihr Termin",
        "skip": "Zum Inhalt springen",
        "intro": "Bitte sagen Sie uns, ob Sie zu Ihrem Termin kommen.",
        "when": "Wann", "how": "Wie", "where": "Wo",
        "in_person": "vor Ort", "phone": "telefonisch", "video": "per Video",
        "confirm": "Ja, ich komme", "cancel": "Nein, ich kann nicht kommen",
        "answers": "Ihre Antwort",
        "done_confirmed": "Danke! Ihr Termin ist bestätigt.",
        "done_cancel_requested": "Danke. Wir haben weitergegeben, dass Sie nicht kommen können. "
                                 "Ihre Ansprechperson meldet sich bei Ihnen.",
        "already": "Diese Antwort haben Sie schon gegeben. Sie müssen nichts mehr tun.",
        "expired": "Dieser Link gilt nicht mehr: Der Termin ist vorbei oder wurde geändert.",
        "closed": "Zu diesem Termin ist keine Antwort mehr möglich. Bei Fragen wenden Sie sich "
                  "an Ihre Ansprechperson.",
        "invalid": "Dieser Link ist nicht gültig. Bitte nutzen Sie den Link aus Ihrer E-Mail.",
        "given": "Bisher geantwortet: {answers}",
    },
    "en": {
        "title": "Your appointment",
        "skip": "Skip to content",
        "intro": "Please tell us whether you will come to your appointment.",
        "when": "When", "how": "How", "where": "Where",
        "in_person": "in person", "phone": "by phone", "video": "by video",
        "confirm": "Yes, I will come", "cancel": "No, I cannot come",
        "answers": "Your answer",
        "done_confirmed": "Thank you! Your appointment is confirmed.",
        "done_cancel_requested": "Thank you. We have passed on that you cannot come. Your "
                                 "contact person will get in touch with you.",
        "already": "You have already given this answer. There is nothing more to do.",
        "expired": "This link is no longer valid: the appointment is over or has changed.",
        "closed": "This appointment no longer takes answers. If you have questions, please "
                  "contact your contact person.",
        "invalid": "This link is not valid. Please use the link from your e-mail.",
        "given": "Answered so far: {answers}",
    },
    "ar": {
        "title": "موعدك",
        "skip": "انتقل إلى المحتوى",
        "intro": "يرجى إخبارنا إذا كنت ستحضر إلى موعدك.",
        "when": "متى", "how": "كيف", "where": "أين",
        "in_person": "حضوريًا", "phone": "عبر الهاتف", "video": "عبر الفيديو",
        "confirm": "نعم، سأحضر", "cancel": "لا، لا أستطيع الحضور",
        "answers": "إجابتك",
        "done_confirmed": "شكرًا! تم تأكيد موعدك.",
        "done_cancel_requested": "شكرًا. أبلغنا بأنك لا تستطيع الحضور. سيتواصل معك الشخص "
                                 "المسؤول عنك.",
        "already": "لقد قدمت هذه الإجابة من قبل. لا حاجة لفعل أي شيء آخر.",
        "expired": "هذا الرابط لم يعد صالحًا: انتهى الموعد أو تم تغييره.",
        "closed": "لم يعد من الممكن الرد على هذا الموعد. إذا كانت لديك أسئلة، تواصل مع الشخص "
                  "المسؤول عنك.",
        "invalid": "هذا الرابط غير صالح. يرجى استخدام الرابط الموجود في بريدك الإلكتروني.",
        "given": "الإجابات حتى الآن: {answers}",
    },
    "fa": {
        "title": "وقت ملاقات شما",
        "skip": "رفتن به محتوا",
        "intro": "لطفاً به ما بگویید که آیا به وقت ملاقات خود می‌آیید.",
        "when": "کی", "how": "چگونه", "where": "کجا",
        "in_person": "حضوری", "phone": "تلفنی", "video": "تصویری",
        "confirm": "بله، می‌آیم", "cancel": "نه، نمی‌توانم بیایم",
        "answers": "پاسخ شما",
        "done_confirmed": "متشکریم! وقت ملاقات شما تأیید شد.",
        "done_cancel_requested": "متشکریم. اطلاع دادیم که نمی‌توانید بیایید. فرد مسئول شما با "
                                 "شما تماس می‌گیرد.",
        "already": "شما قبلاً این پاسخ را داده‌اید. کار دیگری لازم نیست.",
        "expired": "این لینک دیگر معتبر نیست: وقت ملاقات گذشته یا تغییر کرده است.",
        "closed": "دیگر نمی‌توان به این وقت ملاقات پاسخ داد. اگر سؤالی دارید، با فرد مسئول خود "
                  "تماس بگیرید.",
        "invalid": "این لینک معتبر نیست. لطفاً از لینک ایمیل خود استفاده کنید.",
        "given": "پاسخ‌های تا کنون: {answers}",
    },
    "uk": {
        "title": "Ваша зустріч",
        "skip": "Перейти до змісту",
        "intro": "Будь ласка, повідомте нам, чи прийдете ви на зустріч.",
        "when": "Коли", "how": "Як", "where": "Де",
        "in_person": "особисто", "phone": "телефоном", "video": "відеозв'язком",
        "confirm": "Так, я прийду", "cancel": "Ні, я не можу прийти",
        "answers": "Ваша відповідь",
        "done_confirmed": "Дякуємо! Вашу зустріч підтверджено.",
        "done_cancel_requested": "Дякуємо. Ми передали, що ви не можете прийти. Ваша контактна "
                                 "особа зв'яжеться з вами.",
        "already": "Ви вже дали цю відповідь. Більше нічого робити не потрібно.",
        "expired": "Це посилання більше не дійсне: зустріч минула або змінилася.",
        "closed": "На цю зустріч більше не можна відповісти. Якщо у вас є запитання, зверніться "
                  "до вашої контактної особи.",
        "invalid": "Це посилання недійсне. Будь ласка, скористайтеся посиланням з вашого листа.",
        "given": "Відповіді досі: {answers}",
    },
    "tr": {
        "title": "Randevunuz",
        "skip": "İçeriğe geç",
        "intro": "Lütfen randevunuza gelip gelmeyeceğinizi bize bildirin.",
        "when": "Ne zaman", "how": "Nasıl", "where": "Nerede",
        "in_person": "yüz yüze", "phone": "telefonla", "video": "görüntülü görüşmeyle",
        "confirm": "Evet, geleceğim", "cancel": "Hayır, gelemiyorum",
        "answers": "Yanıtınız",
        "done_confirmed": "Teşekkürler! Randevunuz onaylandı.",
        "done_cancel_requested": "Teşekkürler. Gelemeyeceğinizi ilettik. İrtibat kişiniz sizinle "
                                 "iletişime geçecek.",
        "already": "Bu yanıtı zaten verdiniz. Başka bir şey yapmanıza gerek yok.",
        "expired": "Bu bağlantı artık geçerli değil: randevu geçti veya değişti.",
        "closed": "Bu randevuya artık yanıt verilemez. Sorularınız için irtibat kişinize "
                  "başvurun.",
        "invalid": "Bu bağlantı geçerli değil. Lütfen e-postanızdaki bağlantıyı kullanın.",
        "given": "Şimdiye kadarki yanıtlar: {answers}",
    },
    "ru": {
        "title": "Ваша встреча",
        "skip": "Перейти к содержанию",
        "intro": "Пожалуйста, сообщите нам, придёте ли вы на встречу.",
        "when": "Когда", "how": "Как", "where": "Где",
        "in_person": "лично", "phone": "по телефону", "video": "по видеосвязи",
        "confirm": "Да, я приду", "cancel": "Нет, я не смогу прийти",
        "answers": "Ваш ответ",
        "done_confirmed": "Спасибо! Ваша встреча подтверждена.",
        "done_cancel_requested": "Спасибо. Мы передали, что вы не сможете прийти. Ваше "
                                 "контактное лицо свяжется с вами.",
        "already": "Вы уже дали этот ответ. Больше ничего делать не нужно.",
        "expired": "Эта ссылка больше не действует: встреча прошла или изменилась.",
        "closed": "На эту встречу больше нельзя ответить. Если у вас есть вопросы, обратитесь "
                  "к вашему контактному лицу.",
        "invalid": "Эта ссылка недействительна. Пожалуйста, используйте ссылку из вашего письма.",
        "given": "Ответы на данный момент: {answers}",
    },
}


def texts_for(language: str | None) -> tuple[str, dict[str, str]]:
    code = (language or "").lower()
    code = code if code in TEXTS else DEFAULT
    return code, TEXTS[code]
